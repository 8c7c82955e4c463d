#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace capture {

// `kubectl annotate pod P tcpdump.antrea.io="N"` asks for a capture of P into N rotating files.
inline constexpr char kCaptureAnnotation[] = "tcpdump.antrea.io";

// The default upper bound on N. Each file holds about 1 MB (-C 1M, or -C 1 where tcpdump takes
// only millions of bytes: see probeTcpdump), so one Pod uses at
// most ~10 MB of the node's disk, and a node full of Pods (the kubelet's default maxPods is 110)
// stays near 1.1 GB even if every Pod is captured.
inline constexpr int kDefaultMaxCaptureFiles = 10;

// N as a plain decimal integer in [1, max_files]: digits only, so "", "abc", "0", "-1", "+5",
// " 5", "5.5", "1e3", a 30-digit number or anything above max_files is InvalidArgument, with a
// message that names the value and the rule (it becomes a Warning Event on the Pod). Leading
// zeros are allowed: "07" is 7.
absl::StatusOr<int> parseCaptureAnnotation(absl::string_view value, int max_files);

// Optional annotations next to kCaptureAnnotation, which aim and bound a capture.
inline constexpr char kFilterAnnotation[] = "tcpdump.antrea.io/filter";      // capture/filter.h
inline constexpr char kDurationAnnotation[] = "tcpdump.antrea.io/duration";  // stop after this
inline constexpr char kPacketsAnnotation[] = "tcpdump.antrea.io/packets";    // stop after these

inline constexpr std::chrono::seconds kMaxCaptureDuration = std::chrono::hours(24);
inline constexpr uint64_t kMaxCapturePackets = 100'000'000;

// A whole number of seconds from 1 s to kMaxCaptureDuration, written either as plain decimal
// seconds ("90", leading zeros allowed) or as Go's time.ParseDuration writes it: a sequence of
// decimal numbers, each with an optional fraction and a unit ("90s", "5m", "1h30m", "1.5h",
// ".5h"), units h, m, s, ms, us, µs (U+00B5 or U+03BC) and ns. The total must come to whole
// seconds rather than be rounded to them, so that a capture never runs for a time nobody
// wrote: "1.5h" and "2000ms" are fine, "1.5s" and "500ms" are not. Anything else (empty,
// spaces, signs, "0", "0s", unknown units, a number without a unit, trailing junk, overflow,
// over the maximum) is InvalidArgument naming the value and the rule.
absl::StatusOr<std::chrono::seconds> parseCaptureDuration(absl::string_view value);

// A plain decimal integer in [1, kMaxCapturePackets], by the same rules as N: digits only,
// leading zeros allowed; anything else is InvalidArgument naming the value and the rule.
absl::StatusOr<uint64_t> parseCapturePackets(absl::string_view value);

// What a Pod's annotations ask for: N files, and optionally a filter and bounds. Two captures
// with different specs are different captures (a change restarts it, deleting the files).
struct CaptureSpec {
  int files = 0;
  std::string filter;  // "": every packet; checked apart (validateCaptureFilter, filter.h)
  std::optional<std::chrono::seconds> duration;
  std::optional<uint64_t> packets;
  bool operator==(const CaptureSpec&) const = default;
  // What differs from `other`, for a restart's Event ("the filter changed", ...).
  std::string differenceFrom(const CaptureSpec& other) const;
  // "filter \"icmp\", for 90s, up to 20 packets" (empty when unbounded and unfiltered).
  std::string describeLimits() const;
};
// The spec of a Pod whose annotations hold kCaptureAnnotation; the first invalid annotation is
// InvalidArgument with the message of its parser (a Warning Event). The filter is only copied.
absl::StatusOr<CaptureSpec> captureSpecOf(const std::map<std::string, std::string>& annotations,
                                          int max_files);

// `value` as annotation messages quote it: in double quotes, C-escaped (control characters and
// non-ASCII bytes as \n, \x01...), and only its first `max_shown` bytes, then "...":
// annotation values can be up to 256 KiB and end up in Events.
std::string quoteAnnotationValue(absl::string_view value, size_t max_shown = 40);

}  // namespace capture

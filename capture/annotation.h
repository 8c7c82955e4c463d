#pragma once

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

}  // namespace capture

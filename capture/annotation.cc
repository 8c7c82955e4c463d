#include "capture/annotation.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace capture {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// A string of decimal digits, as a number no larger than `max`: nullopt when `digits` holds
// anything else (or nothing), `max + 1` when the number is larger, whatever its length.
std::optional<uint64_t> parseDigitsUpTo(absl::string_view digits, uint64_t max) {
  if (digits.empty()) return std::nullopt;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  uint64_t n = 0;
  for (char c : digits) {
    n = n * 10 + (c - '0');
    if (n > max) return max + 1;  // stop before overflow can happen
  }
  return n;
}

// The durations are counted in nanoseconds while parsing: every unit is a whole number of them
// and the maximum (24 h = 8.64e13 ns) is far from int64's limit.
constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr int64_t kMaxDurationNanos = kMaxCaptureDuration.count() * kNanosPerSecond;

// Go's units (time.ParseDuration), in nanoseconds; 0 for an unknown unit.
int64_t unitNanos(absl::string_view unit) {
  if (unit == "h") return 3600 * kNanosPerSecond;
  if (unit == "m") return 60 * kNanosPerSecond;
  if (unit == "s") return kNanosPerSecond;
  if (unit == "ms") return 1'000'000;
  if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") return 1'000;
  if (unit == "ns") return 1;
  return 0;
}

std::string describeMaxDuration() {
  static_assert(kMaxCaptureDuration % hours(1) == seconds(0), "said in whole hours");
  return absl::StrCat(kMaxCaptureDuration / hours(1), "h");
}

}  // namespace

std::string quoteAnnotationValue(absl::string_view value, size_t max_shown) {
  std::string shown = absl::CHexEscape(std::string(value.substr(0, max_shown)));
  if (value.size() > max_shown) absl::StrAppend(&shown, "...");
  return absl::StrCat("\"", shown, "\"");
}

absl::StatusOr<int> parseCaptureAnnotation(absl::string_view value, int max_files) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "annotation ", kCaptureAnnotation, "=", quoteAnnotationValue(value), " ", why,
        ": want the number of capture files, a plain decimal integer from 1 to ", max_files));
  };
  if (value.empty()) return invalid("is empty");
  for (char c : value) {
    if (c < '0' || c > '9') return invalid("is not a plain decimal integer");
  }
  int64_t n = 0;
  for (char c : value) {
    n = n * 10 + (c - '0');
    // Stop before overflow can happen; anything this large is over any maximum.
    if (n > max_files) return invalid("is over the maximum");
  }
  if (n < 1) return invalid("is below 1");
  return static_cast<int>(n);
}

absl::StatusOr<seconds> parseCaptureDuration(absl::string_view value) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(kDurationAnnotation, " ", quoteAnnotationValue(value), " ", why,
                     ": use seconds (\"90\") or a duration such as \"90s\", \"5m\", \"1h30m\", "
                     "from 1s to ",
                     describeMaxDuration()));
  };
  if (value.empty()) return invalid("is empty");

  if (const std::optional<uint64_t> plain_seconds =
          parseDigitsUpTo(value, kMaxCaptureDuration.count())) {
    if (*plain_seconds > static_cast<uint64_t>(kMaxCaptureDuration.count())) {
      return invalid("is over the maximum");
    }
    if (*plain_seconds < 1) return invalid("is below 1s");
    return seconds(*plain_seconds);
  }

  // Go's grammar, [0-9]*(\.[0-9]*)?unit repeated, where a unit is everything up to the next
  // digit or '.'. The whole value is read before its size is judged: a value that is not a
  // duration at all says so, whatever its numbers.
  int64_t total_nanos = 0;
  bool over_maximum = false;
  bool whole_nanos = true;
  absl::string_view rest = value;
  while (!rest.empty()) {
    const size_t integer_end = std::min(rest.find_first_not_of("0123456789"), rest.size());
    const absl::string_view integer_digits = rest.substr(0, integer_end);
    rest.remove_prefix(integer_end);
    absl::string_view fraction_digits;
    if (!rest.empty() && rest.front() == '.') {
      rest.remove_prefix(1);
      const size_t fraction_end = std::min(rest.find_first_not_of("0123456789"), rest.size());
      fraction_digits = rest.substr(0, fraction_end);
      rest.remove_prefix(fraction_end);
    }
    if (integer_digits.empty() && fraction_digits.empty()) return invalid("is not a duration");
    const size_t unit_end = std::min(rest.find_first_of(".0123456789"), rest.size());
    const absl::string_view unit = rest.substr(0, unit_end);
    rest.remove_prefix(unit_end);
    if (unit.empty()) return invalid("is not a duration (a number without a unit)");
    const int64_t unit_nanos = unitNanos(unit);
    if (unit_nanos == 0) {
      return invalid(
          absl::StrCat("is not a duration (unknown unit ", quoteAnnotationValue(unit), ")"));
    }
    if (over_maximum) continue;  // only the syntax of the rest matters now

    // The integer part, capped just above the maximum so that nothing can overflow.
    const uint64_t max_count = kMaxDurationNanos / unit_nanos;
    const uint64_t count = integer_digits.empty() ? 0 : *parseDigitsUpTo(integer_digits, max_count);
    // The fraction, exactly: its digits without trailing zeros over 10^digits, in units. It
    // must come to whole nanoseconds, since the total must come to whole seconds; past 13
    // significant digits it cannot (no unit has more than 13 factors of 2 or 11 of 5), and up
    // to 18 the arithmetic below is exact.
    const absl::string_view significant =
        fraction_digits.substr(0, fraction_digits.find_last_not_of('0') + 1);
    int64_t fraction_nanos = 0;
    if (significant.size() > 18) {
      whole_nanos = false;
    } else if (!significant.empty()) {
      uint64_t scale = 1;
      for (size_t i = 0; i < significant.size(); ++i) scale *= 10;
      const unsigned __int128 scaled =
          static_cast<unsigned __int128>(*parseDigitsUpTo(significant, scale)) * unit_nanos;
      if (scaled % scale != 0) whole_nanos = false;
      fraction_nanos = static_cast<int64_t>(scaled / scale);  // < unit_nanos
    }
    if (count > max_count) {
      over_maximum = true;
      continue;
    }
    total_nanos += static_cast<int64_t>(count) * unit_nanos + fraction_nanos;
    over_maximum = total_nanos > kMaxDurationNanos;
  }
  if (over_maximum) return invalid("is over the maximum");
  if (total_nanos < kNanosPerSecond) return invalid("is below 1s");
  if (!whole_nanos || total_nanos % kNanosPerSecond != 0) {
    return invalid("is not a whole number of seconds");
  }
  return seconds(total_nanos / kNanosPerSecond);
}

absl::StatusOr<uint64_t> parseCapturePackets(absl::string_view value) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(kPacketsAnnotation, " ", quoteAnnotationValue(value), " ", why,
                     ": want the number of packets to capture, a plain decimal integer from 1 to ",
                     kMaxCapturePackets));
  };
  if (value.empty()) return invalid("is empty");
  const std::optional<uint64_t> packets = parseDigitsUpTo(value, kMaxCapturePackets);
  if (!packets) return invalid("is not a plain decimal integer");
  if (*packets > kMaxCapturePackets) return invalid("is over the maximum");
  if (*packets < 1) return invalid("is below 1");
  return *packets;
}

absl::StatusOr<CaptureSpec> captureSpecOf(const std::map<std::string, std::string>& annotations,
                                          int max_files) {
  CaptureSpec spec;
  const auto value = [&](const char* key) -> std::optional<absl::string_view> {
    auto it = annotations.find(key);
    if (it == annotations.end()) return std::nullopt;
    return it->second;
  };
  auto files = parseCaptureAnnotation(value(kCaptureAnnotation).value_or(""), max_files);
  if (!files.ok()) return files.status();
  spec.files = *files;
  if (auto filter = value(kFilterAnnotation)) spec.filter = std::string(*filter);
  if (auto duration = value(kDurationAnnotation)) {
    auto parsed = parseCaptureDuration(*duration);
    if (!parsed.ok()) return parsed.status();
    spec.duration = *parsed;
  }
  if (auto packets = value(kPacketsAnnotation)) {
    auto parsed = parseCapturePackets(*packets);
    if (!parsed.ok()) return parsed.status();
    spec.packets = *parsed;
  }
  return spec;
}

std::string CaptureSpec::differenceFrom(const CaptureSpec& other) const {
  std::vector<std::string> changes;
  if (files != other.files) {
    changes.push_back(absl::StrCat("the file count changed from ", other.files, " to ", files));
  }
  if (filter != other.filter) changes.push_back("the filter changed");
  if (duration != other.duration) changes.push_back("the duration changed");
  if (packets != other.packets) changes.push_back("the packet count changed");
  return absl::StrJoin(changes, ", ");
}

std::string CaptureSpec::describeLimits() const {
  std::vector<std::string> limits;
  if (!filter.empty()) limits.push_back(absl::StrCat("filter ", quoteAnnotationValue(filter, 80)));
  if (duration) limits.push_back(absl::StrCat("for ", duration->count(), "s"));
  if (packets) limits.push_back(absl::StrCat("up to ", *packets, " packets"));
  return absl::StrJoin(limits, ", ");
}

}  // namespace capture

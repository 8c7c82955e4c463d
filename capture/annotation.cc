#include "capture/annotation.h"

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace capture {
namespace {

// Annotation values can be up to 256 KiB: quote enough of one to recognise it, no more.
std::string quoteForMessage(absl::string_view value) {
  constexpr size_t kShown = 40;
  std::string shown = absl::CHexEscape(std::string(value.substr(0, kShown)));
  if (value.size() > kShown) absl::StrAppend(&shown, "...");
  return absl::StrCat("\"", shown, "\"");
}

}  // namespace

absl::StatusOr<int> parseCaptureAnnotation(absl::string_view value, int max_files) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "annotation ", kCaptureAnnotation, "=", quoteForMessage(value), " ", why,
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

}  // namespace capture

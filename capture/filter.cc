#include "capture/filter.h"

#include <pcap/pcap.h>

#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "capture/annotation.h"

namespace capture {
namespace {

// tcpdump's own default snapshot length (4.99), which the filter's offsets are checked against.
constexpr int kSnapshotLength = 262144;

// Enough of the expression to recognise it next to libpcap's message.
constexpr size_t kQuotedFilterBytes = 120;

struct PcapCloser {
  void operator()(pcap_t* pcap) const { pcap_close(pcap); }
};
using PcapHandle = std::unique_ptr<pcap_t, PcapCloser>;

// A compiled program, freed with pcap_freecode.
class CompiledFilter {
 public:
  CompiledFilter() = default;
  CompiledFilter(const CompiledFilter&) = delete;
  CompiledFilter& operator=(const CompiledFilter&) = delete;
  ~CompiledFilter() { pcap_freecode(&program_); }  // safe on a program never compiled
  bpf_program* get() { return &program_; }

 private:
  bpf_program program_{};
};

bool isControlCharacter(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte < 0x20 || byte == 0x7f;
}

}  // namespace

absl::Status validateCaptureFilter(absl::string_view expression) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        kFilterAnnotation, " ", quoteAnnotationValue(expression, kQuotedFilterBytes), " ", why));
  };
  if (expression.size() > kMaxFilterBytes) {
    return invalid(absl::StrCat("is ", expression.size(), " bytes long: a filter is at most ",
                                kMaxFilterBytes, " bytes"));
  }
  for (char c : expression) {
    if (isControlCharacter(c)) {
      return invalid(
          "holds a control character: a filter is one line of printable text, without tabs");
    }
  }
  if (absl::StripAsciiWhitespace(expression).empty()) {
    return invalid(
        "is blank: want a pcap filter expression such as \"tcp port 443\", or no annotation to "
        "capture every packet");
  }

  const PcapHandle pcap(pcap_open_dead(DLT_EN10MB, kSnapshotLength));
  if (pcap == nullptr) return absl::ResourceExhaustedError("pcap_open_dead failed");
  // pcap_compile wants a NUL-terminated string; the expression holds no NUL (checked above).
  const std::string terminated(expression);
  CompiledFilter program;
  if (pcap_compile(pcap.get(), program.get(), terminated.c_str(), /*optimize=*/1,
                   PCAP_NETMASK_UNKNOWN) != 0) {
    return invalid(absl::StrCat("does not compile: ", pcap_geterr(pcap.get())));
  }
  return absl::OkStatus();
}

}  // namespace capture

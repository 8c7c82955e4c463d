#include "capture/filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace capture {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string messageOf(const absl::Status& status) { return std::string(status.message()); }

TEST(ValidateCaptureFilter, AcceptsWhatLibpcapCompiles) {
  for (const std::string expression :
       {"icmp", "tcp port 443 and host 10.0.0.7", "udp and not port 53",
        "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", "vlan and ip6", "ether host 00:11:22:33:44:55",
        " icmp ", "port http"}) {
    SCOPED_TRACE(expression);
    EXPECT_TRUE(validateCaptureFilter(expression).ok())
        << validateCaptureFilter(expression).message();
  }
}

TEST(ValidateCaptureFilter, QuotesLibpcapsOwnErrorForWhatDoesNotCompile) {
  // libpcap 1.10.3's messages (Debian 12); only their key words are asserted.
  const absl::Status port = validateCaptureFilter("tcp port 99999");
  EXPECT_EQ(port.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(messageOf(port),
              StartsWith("tcpdump.antrea.io/filter \"tcp port 99999\" does not compile: "));
  EXPECT_THAT(messageOf(port), HasSubstr("99999"));
  EXPECT_THAT(messageOf(port), HasSubstr("65535"));  // "illegal port number 99999 > 65535"

  EXPECT_THAT(messageOf(validateCaptureFilter("tcp or")), HasSubstr("syntax error"));
  EXPECT_THAT(messageOf(validateCaptureFilter("foo")), HasSubstr("syntax error"));
  EXPECT_THAT(messageOf(validateCaptureFilter("tcp and udp")), HasSubstr("rejects all packets"));
  // The netmask is known only inside the Pod.
  EXPECT_THAT(messageOf(validateCaptureFilter("ip broadcast")), HasSubstr("netmask"));
}

TEST(ValidateCaptureFilter, RejectsInjectionAttempts) {
  // tcpdump gets the expression as one argument after "--"; these must not pass even so.
  for (const std::string expression :
       {"-w /etc/passwd", "--relinquish-privileges=nobody", "-V /x", "icmp -w /x", "icmp\n-w /x",
        "tcp port 443; rm -rf /", "icmp\r-w /x", "$(reboot)", "`reboot`"}) {
    SCOPED_TRACE(expression);
    const absl::Status status = validateCaptureFilter(expression);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(messageOf(status), StartsWith("tcpdump.antrea.io/filter \""));
  }
  EXPECT_THAT(messageOf(validateCaptureFilter("-w /etc/passwd")), HasSubstr("syntax error"));
  EXPECT_THAT(messageOf(validateCaptureFilter("icmp\n-w /x")), HasSubstr("control character"));
}

TEST(ValidateCaptureFilter, TakesAtMost1024Bytes) {
  // "tcp or tcp or ... tcp": valid at every length.
  const auto repeated = [](size_t bytes) {
    std::string expression = "tcp";
    while (expression.size() + 7 <= bytes) expression += " or tcp";
    expression += std::string(bytes - expression.size(), ' ');  // pad with spaces at the end
    return expression;
  };
  ASSERT_EQ(repeated(kMaxFilterBytes).size(), 1024u);
  EXPECT_TRUE(validateCaptureFilter(repeated(kMaxFilterBytes)).ok())
      << validateCaptureFilter(repeated(kMaxFilterBytes)).message();

  const absl::Status too_long = validateCaptureFilter(repeated(kMaxFilterBytes + 1));
  EXPECT_EQ(too_long.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(messageOf(too_long), HasSubstr("is 1025 bytes long: a filter is at most 1024 bytes"));
  EXPECT_THAT(messageOf(too_long), HasSubstr("..."));  // quoted, not in full
  EXPECT_LT(messageOf(too_long).size(), 300u);

  // A valid-looking expression just past the limit, without padding.
  std::string tcp_or_tcp = "tcp";
  while (tcp_or_tcp.size() <= kMaxFilterBytes) tcp_or_tcp += " or tcp";
  EXPECT_THAT(messageOf(validateCaptureFilter(tcp_or_tcp)), HasSubstr("bytes long"));
}

TEST(ValidateCaptureFilter, RejectsControlCharacters) {
  const std::vector<std::string> expressions = {
      "icmp\t",     "icmp\n", "tcp\rport 80", "tcp\x01", "tcp\x7f", std::string("tcp\0port 80", 11),
      "\x1b[2Jicmp"};
  for (const std::string& expression : expressions) {
    SCOPED_TRACE(expression);
    const absl::Status status = validateCaptureFilter(expression);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(messageOf(status), HasSubstr("holds a control character"));
  }
  // Quoted escaped, so that the Event shows what was there.
  EXPECT_THAT(messageOf(validateCaptureFilter("icmp\t")), HasSubstr("\"icmp\\t\""));
}

TEST(ValidateCaptureFilter, RejectsBlank) {
  for (const std::string expression : {"", " ", "    "}) {
    SCOPED_TRACE("\"" + expression + "\"");
    const absl::Status status = validateCaptureFilter(expression);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(messageOf(status), HasSubstr("is blank"));
  }
}

}  // namespace
}  // namespace capture

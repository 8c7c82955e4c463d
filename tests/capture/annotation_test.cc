#include "capture/annotation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace capture {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using ::testing::HasSubstr;

TEST(ParseCaptureAnnotation, AcceptsPlainDecimalIntegersFromOneToTheMaximum) {
  EXPECT_EQ(*parseCaptureAnnotation("1", 10), 1);
  EXPECT_EQ(*parseCaptureAnnotation("3", 10), 3);
  EXPECT_EQ(*parseCaptureAnnotation("10", 10), 10);
  EXPECT_EQ(*parseCaptureAnnotation("07", 10), 7);
  EXPECT_EQ(*parseCaptureAnnotation("250", 250), 250);
}

TEST(ParseCaptureAnnotation, RejectsEverythingElseNamingTheValueAndTheRule) {
  const std::string thirty_digits(30, '9');
  for (const std::string value : {"", "abc", "0", "00", "-1", "5.5", " 5", "5 ", "1e3", "+5", "0x5",
                                  "٥", "11", "5\n", thirty_digits.c_str()}) {
    SCOPED_TRACE("value: \"" + value + "\"");
    auto parsed = parseCaptureAnnotation(value, 10);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(parsed.status().message());
    EXPECT_THAT(message, HasSubstr("tcpdump.antrea.io"));
    EXPECT_THAT(message, HasSubstr("a plain decimal integer from 1 to 10"));
    if (value.size() < 40 && value.find_first_not_of("0123456789abcex+-. ") == std::string::npos) {
      EXPECT_THAT(message, HasSubstr("\"" + value + "\""));
    }
  }
}

TEST(ParseCaptureAnnotation, SaysWhichRuleTheValueBreaks) {
  EXPECT_THAT(parseCaptureAnnotation("", 10).status().message(), HasSubstr("is empty"));
  EXPECT_THAT(parseCaptureAnnotation("5.5", 10).status().message(),
              HasSubstr("not a plain decimal integer"));
  EXPECT_THAT(parseCaptureAnnotation("0", 10).status().message(), HasSubstr("below 1"));
  EXPECT_THAT(parseCaptureAnnotation("11", 10).status().message(), HasSubstr("over the maximum"));
  EXPECT_THAT(parseCaptureAnnotation(std::string(30, '9'), 10).status().message(),
              HasSubstr("over the maximum"));
  // A non-digit anywhere wins over size: the value is not a number at all.
  EXPECT_THAT(parseCaptureAnnotation("99999999999x", 10).status().message(),
              HasSubstr("not a plain decimal integer"));
}

TEST(ParseCaptureAnnotation, QuotesOnlyTheStartOfAHugeValue) {
  const std::string huge(100000, 'a');
  const std::string message(parseCaptureAnnotation(huge, 10).status().message());
  EXPECT_LT(message.size(), 300u);
  EXPECT_THAT(message, HasSubstr("..."));
}

TEST(ParseCaptureAnnotation, EscapesControlCharacters) {
  const std::string message(parseCaptureAnnotation("5\n", 10).status().message());
  EXPECT_THAT(message, HasSubstr("\"5\\n\""));
}

TEST(ParseCaptureDuration, AcceptsSecondsAndGoDurationsFromOneSecondTo24Hours) {
  EXPECT_EQ(*parseCaptureDuration("90"), seconds(90));
  EXPECT_EQ(*parseCaptureDuration("1"), seconds(1));
  EXPECT_EQ(*parseCaptureDuration("090"), seconds(90));
  EXPECT_EQ(*parseCaptureDuration("86400"), hours(24));
  EXPECT_EQ(*parseCaptureDuration("90s"), seconds(90));
  EXPECT_EQ(*parseCaptureDuration("5m"), minutes(5));
  EXPECT_EQ(*parseCaptureDuration("1h30m"), minutes(90));
  EXPECT_EQ(*parseCaptureDuration("1m30s"), seconds(90));
  EXPECT_EQ(*parseCaptureDuration("30s1m"), seconds(90));  // Go takes the terms in any order
  EXPECT_EQ(*parseCaptureDuration("1.5h"), minutes(90));
  EXPECT_EQ(*parseCaptureDuration(".5h"), minutes(30));
  EXPECT_EQ(*parseCaptureDuration("5.h"), hours(5));
  EXPECT_EQ(*parseCaptureDuration("1.25m"), seconds(75));
  EXPECT_EQ(*parseCaptureDuration("1.500000000000000000000000000h"), minutes(90));
  EXPECT_EQ(*parseCaptureDuration("24h"), hours(24));
  EXPECT_EQ(*parseCaptureDuration("23h59m60s"), hours(24));
  EXPECT_EQ(*parseCaptureDuration("0000000000000000000000000000005m"), minutes(5));
  // Sub-second units, when they come to whole seconds.
  EXPECT_EQ(*parseCaptureDuration("2000ms"), seconds(2));
  EXPECT_EQ(*parseCaptureDuration("1500ms500ms"), seconds(2));
  EXPECT_EQ(*parseCaptureDuration("1000000us"), seconds(1));
  EXPECT_EQ(*parseCaptureDuration("1000000\u00b5s"), seconds(1));
  EXPECT_EQ(*parseCaptureDuration("1000000\u03bcs"), seconds(1));
  EXPECT_EQ(*parseCaptureDuration("1000000000ns"), seconds(1));
  EXPECT_EQ(*parseCaptureDuration("0.5s0.5s"), seconds(1));
}

TEST(ParseCaptureDuration, RejectsEverythingElseNamingTheValueAndTheRule) {
  const std::string thirty_digits(30, '9');
  for (const std::string value : {"",
                                  " ",
                                  "abc",
                                  "0",
                                  "00",
                                  "0s",
                                  "0h0m",
                                  "-1",
                                  "-5m",
                                  "+5m",
                                  "+90",
                                  " 90",
                                  "90 ",
                                  "5 m",
                                  "5 minutes",
                                  "5M",
                                  "5min",
                                  "5mins",
                                  "5d",
                                  "1w",
                                  "5sec",
                                  "m",
                                  "s",
                                  ".",
                                  ".s",
                                  "1.",
                                  "5.5",
                                  "5m30",
                                  "1h30",
                                  "90s ",
                                  "90s\n",
                                  "1..5h",
                                  "1h-30m",
                                  "5m,",
                                  "1e3s",
                                  "0x5m",
                                  "\u0665s",
                                  "1.5s",
                                  "500ms",
                                  "999ms",
                                  "1500ms",
                                  "0.5s",
                                  "1ns",
                                  "86401",
                                  "24h1s",
                                  "25h",
                                  "1441m",
                                  "9999999999h",
                                  thirty_digits.c_str(),
                                  (thirty_digits + "s").c_str(),
                                  (thirty_digits + "h1x").c_str()}) {
    SCOPED_TRACE("value: \"" + value + "\"");
    auto parsed = parseCaptureDuration(value);
    ASSERT_FALSE(parsed.ok()) << parsed->count();
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(parsed.status().message());
    EXPECT_THAT(message, HasSubstr("tcpdump.antrea.io/duration "));
    EXPECT_THAT(message, HasSubstr("use seconds (\"90\") or a duration such as \"90s\", \"5m\", "
                                   "\"1h30m\", from 1s to 24h"));
    if (value.size() < 40 &&
        value.find_first_not_of("0123456789abcdefghimnsuwx+-. ,") == std::string::npos) {
      EXPECT_THAT(message, HasSubstr("\"" + value + "\""));
    }
  }
}

TEST(ParseCaptureDuration, SaysWhichRuleTheValueBreaks) {
  EXPECT_EQ(parseCaptureDuration("5 minutes").status().message(),
            "tcpdump.antrea.io/duration \"5 minutes\" is not a duration (unknown unit \" "
            "minutes\"): use seconds (\"90\") or a duration such as \"90s\", \"5m\", \"1h30m\", "
            "from 1s to 24h");
  EXPECT_THAT(parseCaptureDuration("").status().message(), HasSubstr("is empty"));
  EXPECT_THAT(parseCaptureDuration("m").status().message(), HasSubstr("is not a duration"));
  EXPECT_THAT(parseCaptureDuration("5.5").status().message(),
              HasSubstr("is not a duration (a number without a unit)"));
  EXPECT_THAT(parseCaptureDuration("5d").status().message(), HasSubstr("unknown unit \"d\""));
  EXPECT_THAT(parseCaptureDuration("0").status().message(), HasSubstr("is below 1s"));
  EXPECT_THAT(parseCaptureDuration("0s").status().message(), HasSubstr("is below 1s"));
  EXPECT_THAT(parseCaptureDuration("500ms").status().message(), HasSubstr("is below 1s"));
  EXPECT_THAT(parseCaptureDuration("1.5s").status().message(),
              HasSubstr("is not a whole number of seconds"));
  EXPECT_THAT(parseCaptureDuration("1.0000000001s").status().message(),
              HasSubstr("is not a whole number of seconds"));
  EXPECT_THAT(parseCaptureDuration("86401").status().message(), HasSubstr("is over the maximum"));
  EXPECT_THAT(parseCaptureDuration("9999999999h").status().message(),
              HasSubstr("is over the maximum"));
  EXPECT_THAT(parseCaptureDuration(std::string(30, '9')).status().message(),
              HasSubstr("is over the maximum"));
  // A value that is not a duration at all says so, however large its numbers.
  EXPECT_THAT(parseCaptureDuration("9999999999h1x").status().message(),
              HasSubstr("is not a duration"));
}

TEST(ParseCaptureDuration, QuotesOnlyTheStartOfAHugeValueAndEscapesControlCharacters) {
  const std::string huge(std::string(100000, '1') + "s");
  const std::string message(parseCaptureDuration(huge).status().message());
  EXPECT_LT(message.size(), 300u);
  EXPECT_THAT(message, HasSubstr("..."));
  EXPECT_THAT(parseCaptureDuration("90s\n").status().message(), HasSubstr("\"90s\\n\""));
  EXPECT_THAT(parseCaptureDuration("5\x01m").status().message(), HasSubstr("\"5\\x01m\""));
}

TEST(ParseCapturePackets, AcceptsPlainDecimalIntegersFromOneToTheMaximum) {
  EXPECT_EQ(*parseCapturePackets("1"), 1u);
  EXPECT_EQ(*parseCapturePackets("1000"), 1000u);
  EXPECT_EQ(*parseCapturePackets("0042"), 42u);
  EXPECT_EQ(*parseCapturePackets("100000000"), kMaxCapturePackets);
}

TEST(ParseCapturePackets, RejectsEverythingElseNamingTheValueAndTheRule) {
  const std::string thirty_digits(30, '9');
  for (const std::string value :
       {"", "abc", "0", "00", "-1", "5.5", " 5", "5 ", "1e3", "+5", "0x5", "\u0665", "5\n", "1k",
        "100000001", "18446744073709551616", thirty_digits.c_str()}) {
    SCOPED_TRACE("value: \"" + value + "\"");
    auto parsed = parseCapturePackets(value);
    ASSERT_FALSE(parsed.ok()) << *parsed;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    const std::string message(parsed.status().message());
    EXPECT_THAT(message, HasSubstr("tcpdump.antrea.io/packets "));
    EXPECT_THAT(message, HasSubstr("a plain decimal integer from 1 to 100000000"));
    if (value.size() < 40 && value.find_first_not_of("0123456789abcekx+-. ") == std::string::npos) {
      EXPECT_THAT(message, HasSubstr("\"" + value + "\""));
    }
  }
}

TEST(ParseCapturePackets, SaysWhichRuleTheValueBreaks) {
  EXPECT_EQ(parseCapturePackets("1k").status().message(),
            "tcpdump.antrea.io/packets \"1k\" is not a plain decimal integer: want the number of "
            "packets to capture, a plain decimal integer from 1 to 100000000");
  EXPECT_THAT(parseCapturePackets("").status().message(), HasSubstr("is empty"));
  EXPECT_THAT(parseCapturePackets("0").status().message(), HasSubstr("is below 1"));
  EXPECT_THAT(parseCapturePackets("100000001").status().message(),
              HasSubstr("is over the maximum"));
  EXPECT_THAT(parseCapturePackets(std::string(30, '9')).status().message(),
              HasSubstr("is over the maximum"));
  EXPECT_THAT(parseCapturePackets("99999999999x").status().message(),
              HasSubstr("not a plain decimal integer"));
}

}  // namespace
}  // namespace capture

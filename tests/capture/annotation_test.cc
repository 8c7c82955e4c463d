#include "capture/annotation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace capture {
namespace {

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

}  // namespace
}  // namespace capture

#include "k8s/bearer_token.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/fakeapi/test_certs.h"
#include "tests/support/files.h"

namespace k8s {
namespace {

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

class BearerTokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/token";
  }

  const testsupport::TempDir temp_{"bearer-token"};  // removed after the test
  const std::string dir_ = temp_.path();
  std::string path_;
  std::chrono::steady_clock::time_point now_ = std::chrono::steady_clock::time_point{};
  BearerToken::Clock clock_ = [this] { return now_; };
};

TEST_F(BearerTokenTest, StaticToken) {
  BearerToken token("abc", "");
  EXPECT_EQ(token.get(), "abc");
  EXPECT_FALSE(token.rereadable());
}

TEST_F(BearerTokenTest, RotatedFileIsPickedUpAfterTheRefreshInterval) {
  writeFile(path_, "first\n");
  BearerToken token("", path_, std::chrono::minutes(1), clock_);
  EXPECT_EQ(token.get(), "first");  // trailing newline stripped
  writeFile(path_, "second");
  now_ += std::chrono::seconds(59);
  EXPECT_EQ(token.get(), "first");
  now_ += std::chrono::seconds(1);
  EXPECT_EQ(token.get(), "second");
}

TEST_F(BearerTokenTest, InvalidateRereadsAtOnce) {
  writeFile(path_, "first");
  BearerToken token("", path_, std::chrono::minutes(1), clock_);
  EXPECT_EQ(token.get(), "first");
  writeFile(path_, "second");
  token.invalidate();
  EXPECT_EQ(token.get(), "second");
}

TEST_F(BearerTokenTest, AnUnreadableFileKeepsTheLastToken) {
  writeFile(path_, "first");
  BearerToken token("", path_, std::chrono::minutes(1), clock_);
  EXPECT_EQ(token.get(), "first");
  std::remove(path_.c_str());
  token.invalidate();
  EXPECT_EQ(token.get(), "first");
}

}  // namespace
}  // namespace k8s

#include "cri/runtime_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "cri/sandbox_resolver.h"

// The client's failure paths that need no runtime: a unix socket that is absent, one that
// refuses connections, one that accepts them and never answers.
namespace cri {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class UnixSocketDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cri-client-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    std::filesystem::remove_all(dir_);
  }
  // A bound unix socket; listening (with a backlog nobody accepts from) or not.
  std::string boundSocket(bool listening) {
    const std::string path = dir_ + "/cri.sock";
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    if (listening) {
      EXPECT_EQ(::listen(fd_, 16), 0);
    }
    return path;
  }

  std::string dir_;
  int fd_ = -1;
};

TEST_F(UnixSocketDir, AbsentSocketIsRuntimeUnavailableAtOnce) {
  RuntimeClient client({dir_ + "/absent.sock", milliseconds(2000)});
  const auto start = Clock::now();
  auto version = client.version();
  const auto took = Clock::now() - start;
  EXPECT_EQ(failureOf(version.status()), ResolveFailure::kRuntimeUnavailable) << version.status();
  EXPECT_NE(version.status().message().find("unix://" + dir_ + "/absent.sock"), std::string::npos)
      << version.status();
  EXPECT_LT(took, milliseconds(1500)) << "failing to connect must not wait for the deadline";
}

TEST_F(UnixSocketDir, RefusedConnectionIsRuntimeUnavailable) {
  const std::string path = boundSocket(/*listening=*/false);
  RuntimeClient client({path, milliseconds(2000)});
  auto version = client.version();
  EXPECT_EQ(failureOf(version.status()), ResolveFailure::kRuntimeUnavailable) << version.status();
  EXPECT_NE(version.status().message().find(path), std::string::npos) << version.status();
}

TEST_F(UnixSocketDir, SilentRuntimeTimesOutAtTheDeadline) {
  const std::string path = boundSocket(/*listening=*/true);
  RuntimeClient client({"unix://" + path, milliseconds(300)});
  const auto start = Clock::now();
  auto list = client.listPodSandbox({});
  const auto took = Clock::now() - start;
  EXPECT_EQ(failureOf(list.status()), ResolveFailure::kRuntimeUnavailable) << list.status();
  EXPECT_NE(list.status().message().find("timed out after 300ms"), std::string::npos)
      << list.status();
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, milliseconds(2000));
}

TEST_F(UnixSocketDir, StatsCountEveryCallAndError) {
  RuntimeClient client({dir_ + "/absent.sock", milliseconds(500)});
  (void)client.version();
  (void)client.version();
  const auto snapshot = client.stats().snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].method, "Version");
  EXPECT_EQ(snapshot[0].calls, 2u);
  EXPECT_EQ(snapshot[0].errors, 2u);
}

}  // namespace
}  // namespace cri

#include "proc/netns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "tests/capture/fakes.h"
#include "tests/proc/netns_fixture.h"
#include "tests/support/e2e_guard.h"

namespace proc {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(OpenNetworkNamespace, AcceptsANetworkNamespace) {
  auto fd = openNetworkNamespace("/proc/self/ns/net");
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_TRUE(fd->valid());
}

TEST(OpenNetworkNamespace, RejectsANamespaceOfAnotherType) {
  auto fd = openNetworkNamespace("/proc/self/ns/mnt");
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.status().message(), HasSubstr("not a network namespace"));
}

TEST(OpenNetworkNamespace, RejectsAPlainFileLikeAnUnmountedPlaceholder) {
  capture::testing::TempDir dir;
  dir.touch("cni-1234", "");
  auto fd = openNetworkNamespace(dir.file("cni-1234"));
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.status().message(), HasSubstr("not a namespace"));
}

TEST(OpenNetworkNamespace, RejectsAMissingPath) {
  EXPECT_FALSE(openNetworkNamespace("/var/run/netns/cni-does-not-exist").ok());
}

// What a sandbox ID looks like: 64 hex digits.
constexpr char kSandboxId[] = "4b5c0ffee1234a7d9c3e8f0b1a2d3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e";

TEST(OpenSandboxNetns, UsesTheRuntimesPathWhenItIsANetworkNamespace) {
  auto opened = openSandboxNetns("/proc/self/ns/net", 1, kSandboxId);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->path, "/proc/self/ns/net");
}

TEST(OpenSandboxNetns, FallsBackToTheSandboxsProcessWhenThePathIsNotMountedHere) {
  E2E_REQUIRE_ROOT();
  // Where containerd puts a pause process: a cgroup named after its sandbox.
  testing::ProcessInCgroup pause(kSandboxId);
  E2E_REQUIRE(pause.ok(), "cannot place a process in a cgroup of its own");
  capture::testing::TempDir dir;
  dir.touch("cni-1234", "");  // what /var/run/netns shows without HostToContainer propagation
  for (const std::string& path : {dir.file("cni-1234"), dir.file("missing"), std::string()}) {
    SCOPED_TRACE(path);
    auto opened = openSandboxNetns(path, pause.pid(), kSandboxId);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->path, absl::StrCat("/proc/", pause.pid(), "/ns/net"));
  }
}

TEST(OpenSandboxNetns, RefusesAPidThatIsNotTheSandboxs) {
  // Without hostPID the sandbox's host pid names any process of the controller's own pid
  // namespace: here the test itself, whose network namespace is the host's.
  for (const std::string& sandbox_id : {std::string(kSandboxId), std::string()}) {
    SCOPED_TRACE(sandbox_id);
    auto opened = openSandboxNetns("/var/run/netns/cni-does-not-exist", ::getpid(), sandbox_id);
    ASSERT_FALSE(opened.ok());
    EXPECT_THAT(opened.status().message(),
                AllOf(HasSubstr("/var/run/netns/cni-does-not-exist"),
                      HasSubstr(sandbox_id.empty() ? "no sandbox ID"
                                                   : absl::StrCat("/proc/", ::getpid(),
                                                                  " is not sandbox ", kSandboxId)),
                      HasSubstr("mountPropagation: HostToContainer")));
  }
}

TEST(OpenSandboxNetns, RefusesTheProcessOfAnotherSandbox) {
  E2E_REQUIRE_ROOT();
  testing::ProcessInCgroup other(
      "9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0");
  E2E_REQUIRE(other.ok(), "cannot place a process in a cgroup of its own");
  auto opened = openSandboxNetns("", other.pid(), kSandboxId);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(), HasSubstr("is not sandbox"));
}

TEST(OpenSandboxNetns, NamesTheMissingMountWhenNothingIsVisible) {
  auto opened = openSandboxNetns("/var/run/netns/cni-does-not-exist", 0, kSandboxId);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(),
              AllOf(HasSubstr("/var/run/netns/cni-does-not-exist"), HasSubstr("/var/run/netns"),
                    HasSubstr("mountPropagation: HostToContainer"), HasSubstr("hostPID")));
}

TEST(OpenSandboxNetns, ChecksTheFallbackToo) {
  // A pid that is not a process at all.
  auto opened = openSandboxNetns("", 999999999, kSandboxId);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(), HasSubstr("/proc/999999999"));
}

TEST(OpenSandboxNetns, AcceptsANamedNetnsLikeTheCnisOnes) {
  E2E_REQUIRE_ROOT();
  testing::TestNetns netns;
  ASSERT_TRUE(netns.ok()) << "ip netns add failed";
  auto opened = openSandboxNetns(netns.path(), 0, kSandboxId);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->path, netns.path());
}

}  // namespace
}  // namespace proc

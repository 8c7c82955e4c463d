#include "capture/netns.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "tests/capture/fakes.h"
#include "tests/capture/netns_fixture.h"
#include "tests/support/e2e_guard.h"

namespace capture {
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
  testing::TempDir dir;
  dir.touch("cni-1234", "");
  auto fd = openNetworkNamespace(dir.file("cni-1234"));
  ASSERT_FALSE(fd.ok());
  EXPECT_THAT(fd.status().message(), HasSubstr("not a namespace"));
}

TEST(OpenNetworkNamespace, RejectsAMissingPath) {
  EXPECT_FALSE(openNetworkNamespace("/var/run/netns/cni-does-not-exist").ok());
}

TEST(OpenSandboxNetns, UsesTheRuntimesPathWhenItIsANetworkNamespace) {
  auto opened = openSandboxNetns("/proc/self/ns/net", 1);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->path, "/proc/self/ns/net");
}

TEST(OpenSandboxNetns, FallsBackToProcPidWhenThePathIsNotMountedHere) {
  testing::TempDir dir;
  dir.touch("cni-1234", "");  // what /var/run/netns shows without HostToContainer propagation
  for (const std::string& path : {dir.file("cni-1234"), dir.file("missing"), std::string()}) {
    auto opened = openSandboxNetns(path, ::getpid());
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->path, absl::StrCat("/proc/", ::getpid(), "/ns/net"));
  }
}

TEST(OpenSandboxNetns, NamesTheMissingMountWhenNothingIsVisible) {
  auto opened = openSandboxNetns("/var/run/netns/cni-does-not-exist", 0);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(),
              AllOf(HasSubstr("/var/run/netns/cni-does-not-exist"), HasSubstr("/var/run/netns"),
                    HasSubstr("mountPropagation: HostToContainer"), HasSubstr("hostPID")));
}

TEST(OpenSandboxNetns, ChecksTheFallbackToo) {
  // pid 1's namespace is fine, but a pid that is not a process is not.
  auto opened = openSandboxNetns("", 999999999);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(), HasSubstr("/proc/999999999/ns/net"));
}

TEST(OpenSandboxNetns, AcceptsANamedNetnsLikeTheCnisOnes) {
  E2E_REQUIRE_ROOT();
  testing::TestNetns netns;
  ASSERT_TRUE(netns.ok()) << "ip netns add failed";
  auto opened = openSandboxNetns(netns.path(), 0);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->path, netns.path());
}

}  // namespace
}  // namespace capture

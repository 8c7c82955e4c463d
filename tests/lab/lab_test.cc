#include <glog/logging.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cri/cri_sandbox_resolver.h"
#include "tests/lab/command.h"
#include "tests/lab/containerd_lab.h"
#include "tests/lab/icmp.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/proc.h"

namespace lab {
namespace {

namespace fs = std::filesystem;

using testsupport::processLives;

bool linkExists(const std::string& name) { return fs::exists("/sys/class/net/" + name); }

TEST(ContainerdLab, TwoLabsRunSideBySideAndTearDownCleanly) {
  E2E_REQUIRE_ROOT();
  auto first = ContainerdLab::start();
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = ContainerdLab::start();
  ASSERT_TRUE(second.ok()) << second.status();
  ContainerdLab& a = **first;
  ContainerdLab& b = **second;
  EXPECT_NE(a.dir(), b.dir());
  EXPECT_NE(a.bridge(), b.bridge());
  EXPECT_NE(a.subnet(), b.subnet());
  EXPECT_LE(a.bridge().size(), 15u);

  auto in_a = a.runPodSandbox(podNamed("web"));
  ASSERT_TRUE(in_a.ok()) << in_a.status();
  auto in_b = b.runPodSandbox(podNamed("web"));
  ASSERT_TRUE(in_b.ok()) << in_b.status();
  // Each pod got an address of its own lab's subnet and answers from the host over its bridge.
  const std::string prefix_a = a.gateway().substr(0, a.gateway().rfind('.') + 1);
  EXPECT_EQ(in_a->ip.rfind(prefix_a, 0), 0u) << in_a->ip << " not in " << a.subnet();
  EXPECT_TRUE(pingOnce(in_a->ip).ok());
  EXPECT_TRUE(pingOnce(in_b->ip).ok());

  cri::CriSandboxResolver resolver(a.client());
  auto info = resolver.resolve(in_a->pod_uid);
  ASSERT_TRUE(info.ok()) << info.status();
  const std::string netns = info->netns_path;
  const int64_t pause_pid = info->pid;
  const std::string dir = a.dir(), bridge = a.bridge();
  const pid_t containerd = a.containerdPid();
  ASSERT_TRUE(fs::exists(netns));
  ASSERT_TRUE(linkExists(bridge));
  ASSERT_TRUE(processLives(pause_pid));

  first->reset();  // teardown of a only
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(linkExists(bridge));
  EXPECT_FALSE(fs::exists(netns));
  EXPECT_FALSE(processLives(containerd));
  EXPECT_FALSE(processLives(pause_pid));
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/memory/" + bridge));
  EXPECT_FALSE(fs::exists("/sys/fs/cgroup/" + bridge + "/cgroup.procs"));

  EXPECT_FALSE(pingOnce(in_a->ip, std::chrono::milliseconds(300)).ok());

  // b is untouched.
  EXPECT_TRUE(b.client().version().ok());
  EXPECT_TRUE(pingOnce(in_b->ip).ok());
}

TEST(ContainerdLab, LeftoversOfACrashedLabAreReaped) {
  E2E_REQUIRE_ROOT();
  auto crashed = runCommand({CRASH_HELPER}, std::chrono::seconds(120));
  ASSERT_TRUE(crashed.ok()) << crashed.status();
  ASSERT_EQ(crashed->exit_code, 0) << crashed->err;
  const auto left = nlohmann::json::parse(crashed->out);
  const std::string dir = left["dir"], bridge = left["bridge"], netns = left["netns"];
  const int64_t containerd = left["containerdPid"], pause_pid = left["pid"];
  // The helper is gone, what it made is not.
  ASSERT_TRUE(fs::exists(dir));
  ASSERT_TRUE(linkExists(bridge));
  ASSERT_TRUE(fs::exists(netns));
  ASSERT_TRUE(processLives(containerd));
  ASSERT_TRUE(processLives(pause_pid));

  reapDeadLabs();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(linkExists(bridge));
  EXPECT_FALSE(fs::exists(netns));
  EXPECT_FALSE(processLives(containerd));
  EXPECT_FALSE(processLives(pause_pid));
}

}  // namespace
}  // namespace lab

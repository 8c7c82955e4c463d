// The /proc/<pid>/ns/net fallback against the sandboxes of a real containerd (tests/lab), which
// puts each pause process in a cgroup named after its sandbox (/cclabN/pod<uid>/<sandbox id>).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <future>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cri/cri_sandbox_resolver.h"
#include "proc/netns.h"
#include "proc/netns_launcher.h"
#include "tests/lab/lab_environment.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/files.h"

namespace proc {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::string procCgroupOf(int64_t pid) {
  return testsupport::readFile(absl::StrCat("/proc/", pid, "/cgroup"));
}

class SandboxNetnsInTheLab : public ::testing::Test {
 protected:
  void SetUp() override {
    E2E_REQUIRE_LAB();
    client_ = std::make_unique<cri::RuntimeClient>(
        cri::RuntimeClientOptions{lab::LabEnvironment::lab()->endpoint(), 2000ms});
    resolver_ = std::make_unique<cri::CriSandboxResolver>(*client_);
  }
  void TearDown() override {
    for (const std::string& id : sandboxes_) {
      (void)lab::LabEnvironment::lab()->removePodSandbox(id);
    }
  }
  // A READY sandbox of a new Pod, as the controller resolves it.
  cri::SandboxInfo runSandbox(const std::string& name) {
    auto sandbox = lab::LabEnvironment::lab()->runPodSandbox(lab::podNamed(name));
    EXPECT_TRUE(sandbox.ok()) << sandbox.status();
    if (!sandbox.ok()) return {};
    sandboxes_.push_back(sandbox->id);
    auto info = resolver_->resolve(sandbox->pod_uid);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? *info : cri::SandboxInfo{};
  }

  std::unique_ptr<cri::RuntimeClient> client_;
  std::unique_ptr<cri::CriSandboxResolver> resolver_;
  std::vector<std::string> sandboxes_;
};

TEST_F(SandboxNetnsInTheLab, TheSandboxsOwnPidIsAcceptedAnotherSandboxsIsNot) {
  const cri::SandboxInfo a = runSandbox("netns-a");
  const cri::SandboxInfo b = runSandbox("netns-b");
  ASSERT_GT(a.pid, 0);
  ASSERT_GT(b.pid, 0);

  auto opened = openSandboxNetns("", a.pid, a.id);
  ASSERT_TRUE(opened.ok()) << opened.status() << "\n" << procCgroupOf(a.pid);
  EXPECT_EQ(opened->path, absl::StrCat("/proc/", a.pid, "/ns/net"));
  struct stat via_pid, via_path;
  ASSERT_EQ(::fstat(opened->fd.get(), &via_pid), 0);
  ASSERT_EQ(::stat(a.netns_path.c_str(), &via_path), 0);
  EXPECT_EQ(via_pid.st_ino, via_path.st_ino) << "not the namespace the runtime reported";

  auto wrong = openSandboxNetns("", b.pid, a.id);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(), HasSubstr(absl::StrCat("is not sandbox ", a.id)));
}

TEST_F(SandboxNetnsInTheLab, TheLauncherEntersTheSandboxThroughItsPid) {
  const cri::SandboxInfo sandbox = runSandbox("netns-launch");
  ASSERT_GT(sandbox.pid, 0);
  auto launcher = NetnsLauncher::create({});
  ASSERT_TRUE(launcher.ok()) << launcher.status();
  std::promise<ProcessExit> exited;
  (*launcher)->setExitHandler([&](ProcessExit exit) { exited.set_value(std::move(exit)); });
  LaunchSpec spec;
  spec.owner = sandbox.pod_uid;
  spec.argv = {"/bin/sh", "-c", "readlink /proc/self/ns/net >&2"};
  spec.sandbox_pid = sandbox.pid;  // no netns path: only the fallback can find it
  spec.sandbox_id = sandbox.id;
  auto launched = (*launcher)->start(spec);
  ASSERT_TRUE(launched.ok()) << launched.status();
  EXPECT_EQ(launched->netns_path, absl::StrCat("/proc/", sandbox.pid, "/ns/net"));
  auto future = exited.get_future();
  ASSERT_EQ(future.wait_for(20s), std::future_status::ready);
  struct stat netns;
  ASSERT_EQ(::stat(sandbox.netns_path.c_str(), &netns), 0);
  EXPECT_EQ(future.get().stderr_tail, absl::StrCat("net:[", netns.st_ino, "]"));
  (*launcher)->setExitHandler(nullptr);
}

}  // namespace
}  // namespace proc

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lab::LabEnvironment);
  return RUN_ALL_TESTS();
}

// The resolver and the `sandbox` CLI against a real containerd (tests/lab), one lab for the
// whole binary. Every test makes pods with fresh UIDs, so tests do not see each other's pods.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cri/cri_sandbox_resolver.h"
#include "tests/lab/command.h"
#include "tests/lab/lab_environment.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/proc.h"
#include "tests/support/wait.h"

namespace cri {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

class ResolverE2E : public ::testing::Test {
 protected:
  lab::ContainerdLab& lab() { return *lab::LabEnvironment::lab(); }
  // What the controller uses: the lab's socket, a short deadline.
  RuntimeClient& client() {
    if (client_ == nullptr)
      client_ = std::make_unique<RuntimeClient>(
          RuntimeClientOptions{lab().endpoint(), milliseconds(2000)});
    return *client_;
  }
  CriSandboxResolver& resolver() {
    if (resolver_ == nullptr) resolver_ = std::make_unique<CriSandboxResolver>(client());
    return *resolver_;
  }
  lab::Sandbox run(lab::PodSpec pod) {
    auto sandbox = lab().runPodSandbox(std::move(pod));
    EXPECT_TRUE(sandbox.ok()) << sandbox.status();
    return sandbox.ok() ? *sandbox : lab::Sandbox{};
  }

 private:
  std::unique_ptr<RuntimeClient> client_;
  std::unique_ptr<CriSandboxResolver> resolver_;
};

TEST_F(ResolverE2E, VersionNamesTheRuntime) {
  E2E_REQUIRE_LAB();
  auto version = client().version();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->runtime_name(), "containerd");
  EXPECT_EQ(version->runtime_api_version(), "v1");
  // The containerd of the matrix entry (tests/CMakeLists.txt) that this run is named after.
  EXPECT_EQ(version->runtime_version(), lab().containerdVersion());
  if (const char* expected = std::getenv("CAPTURE_CONTROLLER_LAB_CONTAINERD_VERSION")) {
    EXPECT_THAT(version->runtime_version(), ::testing::HasSubstr(expected));
  }
  RecordProperty("containerd_version", version->runtime_version());
}

TEST_F(ResolverE2E, ResolvesTheNetworkNamespaceOfTheSandboxPauseProcess) {
  E2E_REQUIRE_LAB();
  lab::PodSpec pod = lab::podNamed("web");
  pod.namespace_ = "shop";
  const lab::Sandbox sandbox = run(pod);
  auto info = resolver().resolve(sandbox.pod_uid);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, sandbox.id);
  EXPECT_EQ(info->state, SandboxState::kReady);
  EXPECT_EQ(info->pod_name, "web");
  EXPECT_EQ(info->pod_namespace, "shop");
  EXPECT_EQ(info->pod_uid, sandbox.pod_uid);
  EXPECT_EQ(info->attempt, 0u);
  EXPECT_EQ(info->pod_ip, sandbox.ip);
  EXPECT_GT(info->created_at_ns, 0);
  ASSERT_GT(info->pid, 0);

  // The path is a network namespace...
  struct statfs fs_info {};
  ASSERT_EQ(::statfs(info->netns_path.c_str(), &fs_info), 0) << info->netns_path;
  EXPECT_EQ(static_cast<unsigned long>(fs_info.f_type), static_cast<unsigned long>(NSFS_MAGIC));
  const int fd = ::open(info->netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(::ioctl(fd, NS_GET_NSTYPE), CLONE_NEWNET);
  ::close(fd);
  // ...the very one the sandbox's pause process lives in, and not the host's.
  struct stat netns {
  }, of_pause{}, of_host{};
  ASSERT_EQ(::stat(info->netns_path.c_str(), &netns), 0);
  ASSERT_EQ(::stat(("/proc/" + std::to_string(info->pid) + "/ns/net").c_str(), &of_pause), 0);
  ASSERT_EQ(::stat("/proc/self/ns/net", &of_host), 0);
  EXPECT_EQ(netns.st_ino, of_pause.st_ino);
  EXPECT_EQ(netns.st_dev, of_pause.st_dev);
  EXPECT_NE(netns.st_ino, of_host.st_ino);
}

TEST_F(ResolverE2E, TwoSandboxesForOnePodTheNewestReadyWins) {
  E2E_REQUIRE_LAB();
  lab::PodSpec pod = lab::podNamed("replaced");
  pod.uid = lab::ContainerdLab::newPodUid();
  const lab::Sandbox first = run(pod);
  pod.attempt = 1;
  const lab::Sandbox second = run(pod);

  auto info = resolver().resolve(pod.uid);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, second.id);
  EXPECT_EQ(info->attempt, 1u);

  // READY beats newer.
  ASSERT_TRUE(lab().stopPodSandbox(second.id).ok());
  info = resolver().resolve(pod.uid);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, first.id);

  // None READY: the message lists both.
  ASSERT_TRUE(lab().stopPodSandbox(first.id).ok());
  info = resolver().resolve(pod.uid);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNoReadySandbox) << info.status();
  EXPECT_NE(info.status().message().find(first.id.substr(0, 13)), std::string::npos);
  EXPECT_NE(info.status().message().find(second.id.substr(0, 13)), std::string::npos);

  // Removed: none at all.
  ASSERT_TRUE(lab().removePodSandbox(first.id).ok());
  ASSERT_TRUE(lab().removePodSandbox(second.id).ok());
  EXPECT_EQ(failureOf(resolver().resolve(pod.uid).status()), ResolveFailure::kNoSandbox);
}

TEST_F(ResolverE2E, StoppedSandboxIsNoReadySandbox) {
  E2E_REQUIRE_LAB();
  const lab::Sandbox sandbox = run(lab::podNamed("stopped"));
  ASSERT_TRUE(lab().stopPodSandbox(sandbox.id).ok());
  auto info = resolver().resolve(sandbox.pod_uid);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNoReadySandbox) << info.status();
}

TEST_F(ResolverE2E, UnknownUidIsNoSandbox) {
  E2E_REQUIRE_LAB();
  run(lab::podNamed("someone-else"));
  auto info = resolver().resolve(lab::ContainerdLab::newPodUid());
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNoSandbox) << info.status();
}

TEST_F(ResolverE2E, HostNetworkSandboxIsHostNetwork) {
  E2E_REQUIRE_LAB();
  lab::PodSpec pod = lab::podNamed("node-agent");
  pod.host_network = true;
  const lab::Sandbox sandbox = run(pod);
  EXPECT_EQ(sandbox.ip, "");
  auto info = resolver().resolve(sandbox.pod_uid);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kHostNetwork) << info.status();
}

TEST_F(ResolverE2E, ResolvesByNamespaceAndName) {
  E2E_REQUIRE_LAB();
  lab::PodSpec pod = lab::podNamed("by-name");
  pod.namespace_ = "team-a";
  const lab::Sandbox sandbox = run(pod);
  auto by_name = resolver().resolveByName("team-a", "by-name");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->id, sandbox.id);
  EXPECT_EQ(failureOf(resolver().resolveByName("team-b", "by-name").status()),
            ResolveFailure::kNoSandbox);
}

uint64_t callsOf(const RuntimeClient& client, const std::string& method) {
  for (const auto& s : client.stats().snapshot()) {
    if (s.method == method) return s.calls;
  }
  return 0;
}

TEST_F(ResolverE2E, RepeatResolvesOfALiveSandboxOnlyList) {
  E2E_REQUIRE_LAB();
  const lab::Sandbox sandbox = run(lab::podNamed("steady"));
  RuntimeClient counted({lab().endpoint(), milliseconds(2000)});
  CriSandboxResolver resolver(counted);
  auto first = resolver.resolve(sandbox.pod_uid);
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = resolver.resolve(sandbox.pod_uid);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(callsOf(counted, "ListPodSandbox"), 2u);
  EXPECT_EQ(callsOf(counted, "PodSandboxStatus"), 1u);

  // Replaced by the kubelet: the new sandbox is looked up.
  ASSERT_TRUE(lab().stopPodSandbox(sandbox.id).ok());
  lab::PodSpec next = lab::podNamed("steady");
  next.uid = sandbox.pod_uid;
  next.attempt = 1;
  const lab::Sandbox replacement = run(next);
  auto moved = resolver.resolve(sandbox.pod_uid);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->id, replacement.id);
  EXPECT_NE(moved->netns_path, first->netns_path);
  EXPECT_EQ(callsOf(counted, "PodSandboxStatus"), 2u);
}

TEST_F(ResolverE2E, ASnapshotIsOneListOfEveryPodsNewestReadySandbox) {
  E2E_REQUIRE_LAB();
  lab::PodSpec replaced = lab::podNamed("snap-replaced");
  replaced.uid = lab::ContainerdLab::newPodUid();
  const lab::Sandbox old_one = run(replaced);
  replaced.attempt = 1;
  const lab::Sandbox new_one = run(replaced);
  const lab::Sandbox stopped = run(lab::podNamed("snap-stopped"));
  ASSERT_TRUE(lab().stopPodSandbox(stopped.id).ok());
  const lab::Sandbox gone = run(lab::podNamed("snap-gone"));

  RuntimeClient counted({lab().endpoint(), milliseconds(2000)});
  CriSandboxResolver resolver(counted);
  ASSERT_TRUE(resolver.resolve(gone.pod_uid).ok());
  ASSERT_TRUE(lab().stopPodSandbox(gone.id).ok());
  ASSERT_TRUE(lab().removePodSandbox(gone.id).ok());
  const uint64_t lists_before = callsOf(counted, "ListPodSandbox");

  auto snapshot = resolver.snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(callsOf(counted, "ListPodSandbox"), lists_before + 1);
  EXPECT_EQ(snapshot->newest_ready.at(replaced.uid), new_one.id);
  EXPECT_NE(snapshot->newest_ready.at(replaced.uid), old_one.id);
  EXPECT_EQ(snapshot->newest_ready.at(stopped.pod_uid), "");  // sandboxes, none READY
  EXPECT_FALSE(snapshot->newest_ready.contains(gone.pod_uid));

  // The removed sandbox left the cache: resolving its pod again asks the runtime afresh.
  EXPECT_EQ(failureOf(resolver.resolve(gone.pod_uid).status()), ResolveFailure::kNoSandbox);
}

TEST_F(ResolverE2E, ResolveAllAnswersEveryPodInOrderFromOneList) {
  E2E_REQUIRE_LAB();
  const lab::Sandbox a = run(lab::podNamed("all-a"));
  const lab::Sandbox b = run(lab::podNamed("all-b"));
  const std::string unknown = lab::ContainerdLab::newPodUid();
  RuntimeClient counted({lab().endpoint(), milliseconds(2000)});
  CriSandboxResolver resolver(counted);

  const auto answers = resolver.resolveAll({b.pod_uid, unknown, a.pod_uid});
  ASSERT_EQ(answers.size(), 3u);
  ASSERT_TRUE(answers[0].ok()) << answers[0].status();
  EXPECT_EQ(answers[0]->id, b.id);
  EXPECT_EQ(failureOf(answers[1].status()), ResolveFailure::kNoSandbox) << answers[1].status();
  ASSERT_TRUE(answers[2].ok()) << answers[2].status();
  EXPECT_EQ(answers[2]->id, a.id);
  EXPECT_EQ(*answers[2], *resolver.resolve(a.pod_uid));
  EXPECT_EQ(callsOf(counted, "ListPodSandbox"), 2u);  // one for all three, one for the check
  EXPECT_EQ(callsOf(counted, "PodSandboxStatus"), 2u);
}

TEST_F(ResolverE2E, NetnsRemovedUnderAReadySandboxIsNetnsClosed) {
  E2E_REQUIRE_LAB();
  const lab::Sandbox sandbox = run(lab::podNamed("unmounted"));
  auto info = resolver().resolve(sandbox.pod_uid);  // cached from now on
  ASSERT_TRUE(info.ok()) << info.status();
  // What `ip netns delete` does; the pause process keeps the namespace itself alive.
  ASSERT_EQ(::umount2(info->netns_path.c_str(), MNT_DETACH), 0);
  ASSERT_EQ(::unlink(info->netns_path.c_str()), 0);
  auto after = resolver().resolve(sandbox.pod_uid);
  EXPECT_EQ(failureOf(after.status()), ResolveFailure::kNetnsClosed) << after.status();
}

// True once every thread of `pid` is in the stopped state. kill(SIGSTOP) only queues the stop:
// a thread already running on another CPU can still answer a request before it takes it.
bool allThreadsStopped(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    const std::optional<char> state = testsupport::processState(std::stoi(task.path().filename()));
    if (state != 'T' && state != 't') return false;
  }
  return !ec;
}

// Freezes containerd for the scope, resumes it however the test ends.
struct Frozen {
  pid_t pid;
  bool stopped;
  explicit Frozen(pid_t p)
      : pid(p),
        stopped(::kill(pid, SIGSTOP) == 0 &&
                testsupport::waitUntil([p] { return allThreadsStopped(p); },
                                       std::chrono::seconds(5), milliseconds(5))) {}
  ~Frozen() { ::kill(pid, SIGCONT); }
};

TEST_F(ResolverE2E, FrozenContainerdIsRuntimeUnavailableAtTheDeadline) {
  E2E_REQUIRE_LAB();
  const lab::Sandbox sandbox = run(lab::podNamed("frozen"));
  RuntimeClient impatient({lab().endpoint(), milliseconds(500)});
  CriSandboxResolver frozen_resolver(impatient);
  ASSERT_TRUE(frozen_resolver.resolve(sandbox.pod_uid).ok());  // connected and answering

  absl::StatusOr<SandboxInfo> info;
  Clock::duration took;
  {
    Frozen frozen(lab().containerdPid());
    ASSERT_TRUE(frozen.stopped) << "containerd did not stop";
    const auto start = Clock::now();
    info = frozen_resolver.resolve(sandbox.pod_uid);
    took = Clock::now() - start;
  }
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kRuntimeUnavailable) << info.status();
  EXPECT_NE(info.status().message().find("timed out after 500ms"), std::string::npos)
      << info.status();
  EXPECT_GE(took, milliseconds(450));
  EXPECT_LT(took, milliseconds(3000)) << "a frozen runtime must cost the deadline, not a hang";
  // And it answers again once resumed.
  EXPECT_TRUE(frozen_resolver.resolve(sandbox.pod_uid).ok());
}

TEST_F(ResolverE2E, AbsentSocketIsRuntimeUnavailable) {
  E2E_REQUIRE_LAB();
  RuntimeClient nowhere({lab().dir() + "/no-such.sock", milliseconds(2000)});
  CriSandboxResolver nowhere_resolver(nowhere);
  auto info = nowhere_resolver.resolve(lab::ContainerdLab::newPodUid());
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kRuntimeUnavailable) << info.status();
  EXPECT_NE(info.status().message().find(lab().dir() + "/no-such.sock"), std::string::npos);
}

TEST_F(ResolverE2E, SandboxCommandPrintsWhatTheResolverResolves) {
  E2E_REQUIRE_LAB();
  lab::PodSpec pod = lab::podNamed("cli");
  pod.namespace_ = "ops";
  const lab::Sandbox sandbox = run(pod);
  auto info = resolver().resolve(sandbox.pod_uid);
  ASSERT_TRUE(info.ok()) << info.status();

  for (const std::vector<std::string>& selector :
       {std::vector<std::string>{"--pod-uid", sandbox.pod_uid},
        std::vector<std::string>{"--pod", "ops/cli"}}) {
    std::vector<std::string> argv = {CAPTURE_CONTROLLER, "sandbox", "--cri-endpoint",
                                     lab().endpoint()};
    argv.insert(argv.end(), selector.begin(), selector.end());
    auto out = lab::runCommand(argv);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->exit_code, 0) << out->err;
    EXPECT_EQ(nlohmann::json::parse(out->out), toJson(*info)) << out->out;
  }

  auto missing = lab::runCommand({CAPTURE_CONTROLLER, "sandbox", "--cri-endpoint", lab().endpoint(),
                                  "--pod-uid", "no-such-uid"});
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->exit_code, 1);
  EXPECT_EQ(missing->out, "");
  EXPECT_NE(missing->err.find("NoSandbox"), std::string::npos) << missing->err;
}

}  // namespace
}  // namespace cri

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lab::LabEnvironment);
  return RUN_ALL_TESTS();
}

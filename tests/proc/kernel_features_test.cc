// The kernel probe, the fallbacks for kernels without close_range, and the kernel floor. An older
// kernel is played by proc_kernel_helper under a seccomp filter that refuses the newer calls as
// the older kernel would (ENOSYS, or EINVAL for a flag): proc/ must probe, not read the release.
#include "proc/kernel_features.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "proc/spawn.h"
#include "tests/proc/netns_fixture.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/files.h"

namespace proc {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

struct HelperRun {
  int exit_code = -1;
  std::string output;  // the helper's last stderr lines
};

HelperRun runHelper(std::vector<std::string> args) {
  args.insert(args.begin(), PROC_KERNEL_HELPER);
  auto done = runToCompletion(SpawnSpec{args, {}}, std::chrono::seconds(60));
  if (!done.ok()) return {-1, done.status().ToString()};
  return {done->status.exit_code, done->stderr_tail};
}

TEST(KernelFeatures, ThisKernelHasEverythingAndClosesWithOneCall) {
  const KernelFeatures features = probeKernelFeatures();
  EXPECT_TRUE(features.pidfd_send_signal);
  EXPECT_TRUE(features.clone_pidfd);
  EXPECT_TRUE(features.pidfd_poll);
  EXPECT_TRUE(features.waitid_pidfd);
  EXPECT_TRUE(features.close_range);
  EXPECT_TRUE(features.close_range_cloexec);
  EXPECT_TRUE(features.proc_self_fd);
  EXPECT_EQ(features.fdClosing(), FdClosing::kCloseRangeCloexec);
  EXPECT_TRUE(checkKernelFloor(features).ok());
  EXPECT_TRUE(checkKernelFloor().ok());
  EXPECT_THAT(features.describe(), HasSubstr("close_range(CLOSE_RANGE_CLOEXEC)"));
}

TEST(KernelFeatures, TheProbeLeavesNoChildAndNoDescriptor) {
  const KernelFeatures features = probeKernelFeatures();
  ASSERT_TRUE(features.waitid_pidfd);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  const int next = ::dup(0);
  ::close(next);
  (void)probeKernelFeatures();
  const int after = ::dup(0);
  ::close(after);
  EXPECT_EQ(next, after);
}

TEST(KernelFloor, NamesTheKernelWhatItLacksAndTheFloor) {
  KernelFeatures linux_5_2;
  linux_5_2.release = "5.2.0";
  linux_5_2.pidfd_send_signal = true;
  linux_5_2.clone_pidfd = true;
  const absl::Status floor = checkKernelFloor(linux_5_2);
  EXPECT_EQ(floor.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(floor.message(),
            "kernel 5.2.0 lacks pollable pidfds (Linux 5.3), waitid(P_PIDFD) (Linux 5.4): "
            "capture-controller needs Linux 5.4 or later");

  KernelFeatures linux_5_3 = linux_5_2;
  linux_5_3.release = "5.3.18-59.37-default";
  linux_5_3.pidfd_poll = true;
  EXPECT_EQ(checkKernelFloor(linux_5_3).message(),
            "kernel 5.3.18-59.37-default lacks waitid(P_PIDFD) (Linux 5.4): capture-controller "
            "needs Linux 5.4 or later");

  KernelFeatures linux_5_4 = linux_5_3;
  linux_5_4.release = "5.4.0";
  linux_5_4.waitid_pidfd = true;
  EXPECT_TRUE(checkKernelFloor(linux_5_4).ok()) << "no close_range needed: 5.4 is the floor";
  EXPECT_EQ(linux_5_4.fdClosing(), FdClosing::kUpToLimit);
  linux_5_4.proc_self_fd = true;
  EXPECT_EQ(linux_5_4.fdClosing(), FdClosing::kProcSelfFd);
}

TEST(KernelFeatures, TheHelperSeesThisKernelAsItIs) {
  const HelperRun run = runHelper({"spawn"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("closed with close_range(CLOSE_RANGE_CLOEXEC)"));
  EXPECT_THAT(run.output, HasSubstr("child fds: 0 1 2"));
}

// Linux 5.9 and 5.10 (EKS's Amazon Linux 2): close_range, but EINVAL for CLOSE_RANGE_CLOEXEC.
TEST(FdClosingFallback, WithoutCloseRangeCloexecClosesAroundTheStatusPipe) {
  const HelperRun run = runHelper({"--deny=close_range_cloexec", "spawn"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("closed with close_range\n"));
  EXPECT_THAT(run.output, HasSubstr("child fds: 0 1 2"));
  EXPECT_THAT(run.output, HasSubstr("exec failure: spawn /nonexistent/program: execve"));
}

// Before 5.9: no close_range at all.
TEST(FdClosingFallback, WithoutCloseRangeClosesWhatProcSelfFdLists) {
  const HelperRun run = runHelper({"--deny=close_range", "spawn"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("closed with close of each descriptor /proc/self/fd lists"));
  EXPECT_THAT(run.output, HasSubstr("child fds: 0 1 2"));
  EXPECT_THAT(run.output, HasSubstr("exec failure: spawn /nonexistent/program: execve"));
}

// And without /proc either: every number up to RLIMIT_NOFILE.
TEST(FdClosingFallback, WithoutCloseRangeOrProcClosesEveryNumberUpToTheLimit) {
  // At most 4,096, wherever the test runs: 2 us a number on a loaded VM, 2 s at 1,048,576.
  const HelperRun run =
      runHelper({"--nofile=4096", "--deny=close_range", "--deny=open_directory", "spawn"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("closed with close of every descriptor number up to"));
  EXPECT_THAT(run.output, HasSubstr(" 4086\n")) << "the highest, just below the limit";
  EXPECT_THAT(run.output, HasSubstr("child fds: 0 1 2"));
  EXPECT_THAT(run.output, HasSubstr("exec failure: spawn /nonexistent/program: execve"));
}

// The launcher itself, into a network namespace, on a kernel without close_range.
TEST(FdClosingFallback, TheLauncherStartsItsChildWithoutCloseRange) {
  E2E_REQUIRE_ROOT();
  testing::TestNetns netns;
  ASSERT_TRUE(netns.ok()) << "ip netns add failed";
  const HelperRun run = runHelper({"--deny=close_range", "launch", netns.path()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("launched child exited with status 0"));
  EXPECT_THAT(run.output, HasSubstr("child fds: 0 1 2"));
}

TEST(KernelFloor, FailsWithoutWaitidPidfdNamingIt) {
  const HelperRun run = runHelper({"--deny=waitid_pidfd", "features"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("pidfds MISSING"));
  EXPECT_THAT(run.output, HasSubstr("lacks waitid(P_PIDFD) (Linux 5.4): capture-controller needs "
                                    "Linux 5.4 or later"));
  EXPECT_THAT(run.output, HasSubstr("a seccomp profile must be refusing these calls"));
}

TEST(KernelFloor, FailsWithoutPidfdSendSignalNamingIt) {
  const HelperRun run = runHelper({"--deny=pidfd_send_signal", "features"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output,
              AllOf(HasSubstr("lacks pidfd_send_signal (Linux 5.1): "), Not(HasSubstr("waitid"))));
}

// The code never calls pidfd_open (its pidfds come from clone): a profile refusing it is fine.
TEST(KernelFloor, DoesNotNeedPidfdOpen) {
  const HelperRun run = runHelper({"--deny=pidfd_open", "features"});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("floor: ok"));
}

TEST(KernelFloor, TheControllerBelowItExitsAtStartUpNamingTheKernelAndTheFloor) {
  // Its flags are fine; the kernel is checked before anything is spawned or connected.
  const testsupport::TempDir dir("kernel-floor-test");
  const HelperRun run = runHelper({"--deny=waitid_pidfd", "exec", CAPTURE_CONTROLLER_BINARY, "run",
                                   "--node-name=node-1", "--capture-dir=" + dir.path(),
                                   "--http-address=127.0.0.1:0", "--logtostderr"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, AllOf(HasSubstr("cannot start: kernel "), HasSubstr("waitid(P_PIDFD)"),
                                HasSubstr("needs Linux 5.4 or later")));
}

}  // namespace
}  // namespace proc

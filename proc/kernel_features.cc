#include "proc/kernel_features.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proc/raw_syscall.h"
#include "proc/unique_fd.h"

namespace proc {
namespace {

using internal::rawSyscall;

constexpr size_t kProbeStackBytes = 16 * 1024;

// The probe's child: waits to be killed. Raw system calls only (it runs on the parent's
// memory, as spawn.cc's children do); every signal stays blocked, SIGKILL ends it.
int waitToBeKilled(void* parent) {
  rawSyscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (rawSyscall(SYS_getppid) != *static_cast<const pid_t*>(parent)) rawSyscall(SYS_exit_group, 0);
  while (true) rawSyscall(SYS_ppoll, 0, 0, 0, 0, 8);
  return 0;
}

// Starts a child with CLONE_PIDFD and ends it the way NetnsLauncher ends tcpdump: a running
// child's pidfd must not poll readable, pidfd_send_signal kills it, its pidfd then polls
// readable and waitid(P_PIDFD) reaps it. Whatever fails, the child is killed and reaped by pid.
void probePidfds(KernelFeatures& features) {
  std::unique_ptr<char[]> stack(new char[kProbeStackBytes]);
  pid_t parent = ::getpid();
  int pidfd_number = -1;
  pid_t pid;
  {
    sigset_t all, saved;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid = ::clone(waitToBeKilled, stack.get() + kProbeStackBytes, CLONE_VM | CLONE_PIDFD | SIGCHLD,
                  &parent, &pidfd_number);
    ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  }
  if (pid < 0) return;  // EINVAL before 5.2 on some kernels; others ignore the flag (below)
  const UniqueFd pidfd(pidfd_number);
  features.clone_pidfd = pidfd.valid();
  bool killed = false;
  bool running_not_readable = false;
  if (pidfd.valid()) {
    // Before 5.3 a pidfd has no poll(): it then polls readable (and writable) at once.
    pollfd running{pidfd.get(), POLLIN, 0};
    running_not_readable = ::poll(&running, 1, 0) == 0;
    features.pidfd_send_signal =
        ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0) == 0;
    killed = features.pidfd_send_signal;
  }
  if (!killed) ::kill(pid, SIGKILL);
  if (pidfd.valid()) {
    pollfd exited{pidfd.get(), POLLIN, 0};
    features.pidfd_poll =
        running_not_readable && ::poll(&exited, 1, 5000) == 1 && (exited.revents & POLLIN);
    siginfo_t info = {};
    int rc;
    do {
      // Before 5.4, P_PIDFD (3) is an unknown idtype: EINVAL.
      rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd.get()), &info, WEXITED);
    } while (rc < 0 && errno == EINTR);
    features.waitid_pidfd = rc == 0 && info.si_pid == pid;
    if (features.waitid_pidfd) return;
  }
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

bool procSelfFdLists() {
  const UniqueFd dir(::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return false;
  char buffer[1024];
  return ::syscall(SYS_getdents64, dir.get(), buffer, sizeof(buffer)) > 0;
}

// The major and minor of a release such as "5.10.210-201.852.amzn2.x86_64"; 0.0 if unclear.
std::pair<int, int> releaseVersion(const std::string& release) {
  int major = 0, minor = 0;
  if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) != 2) return {0, 0};
  return {major, minor};
}

}  // namespace

const char* describe(FdClosing closing) {
  switch (closing) {
    case FdClosing::kCloseRangeCloexec:
      return "close_range(CLOSE_RANGE_CLOEXEC)";
    case FdClosing::kCloseRange:
      return "close_range";
    case FdClosing::kProcSelfFd:
      return "close of each descriptor /proc/self/fd lists";
    case FdClosing::kUpToLimit:
      return "close of every descriptor number up to RLIMIT_NOFILE";
  }
  return "?";
}

FdClosing KernelFeatures::fdClosing() const {
  if (close_range_cloexec) return FdClosing::kCloseRangeCloexec;
  if (close_range) return FdClosing::kCloseRange;
  if (proc_self_fd) return FdClosing::kProcSelfFd;
  return FdClosing::kUpToLimit;
}

std::string KernelFeatures::describe() const {
  return absl::StrCat("kernel ", release, ": ",
                      checkKernelFloor(*this).ok() ? "pidfds" : "pidfds MISSING",
                      "; inherited descriptors closed with ", proc::describe(fdClosing()));
}

KernelFeatures probeKernelFeatures() {
  KernelFeatures features;
  utsname name;
  features.release = ::uname(&name) == 0 ? name.release : "(uname failed)";
  probePidfds(features);
  // An empty range at the top: closes nothing. Before 5.9 ENOSYS (or a seccomp profile's
  // EPERM); on 5.9 and 5.10 the flag is EINVAL.
  features.close_range = ::syscall(SYS_close_range, ~0U, ~0U, 0) == 0;
  features.close_range_cloexec =
      features.close_range && ::syscall(SYS_close_range, ~0U, ~0U, CLOSE_RANGE_CLOEXEC) == 0;
  features.proc_self_fd = procSelfFdLists();
  return features;
}

const KernelFeatures& kernelFeatures() {
  static const KernelFeatures features = probeKernelFeatures();
  return features;
}

absl::Status checkKernelFloor(const KernelFeatures& features) {
  std::vector<std::string> missing;
  if (!features.pidfd_send_signal) missing.push_back("pidfd_send_signal (Linux 5.1)");
  if (!features.clone_pidfd) missing.push_back("clone(CLONE_PIDFD) (Linux 5.2)");
  if (!features.pidfd_poll) missing.push_back("pollable pidfds (Linux 5.3)");
  if (!features.waitid_pidfd) missing.push_back("waitid(P_PIDFD) (Linux 5.4)");
  if (missing.empty()) return absl::OkStatus();
  std::string message =
      absl::StrCat("kernel ", features.release, " lacks ", absl::StrJoin(missing, ", "),
                   ": capture-controller needs Linux 5.4 or later");
  if (releaseVersion(features.release) >= std::make_pair(5, 4)) {
    absl::StrAppend(&message, " (", features.release,
                    " is new enough: a seccomp profile must be refusing these calls)");
  }
  return absl::FailedPreconditionError(message);
}

absl::Status checkKernelFloor() { return checkKernelFloor(kernelFeatures()); }

}  // namespace proc

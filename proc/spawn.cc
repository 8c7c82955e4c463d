#include "proc/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proc/kernel_features.h"
#include "proc/raw_syscall.h"

namespace proc {
namespace {

using internal::rawSyscall;

// What the child reports through the status pipe when a step before exec fails.
enum ChildStep : int { kPdeathsig = 1, kSetns, kStdio, kCloseInherited, kExec };

const char* describeStep(int step) {
  switch (step) {
    case kPdeathsig:
      return "prctl(PR_SET_PDEATHSIG)";
    case kSetns:
      return "setns(CLONE_NEWNET)";
    case kStdio:
      return "redirecting stdin/stdout/stderr";
    case kCloseInherited:
      return "closing inherited descriptors";
    case kExec:
      return "execve";
  }
  return "preparing the child";
}

// The child's stdio slots 0-2 are filled with dup2(), which would be a no-op (keeping
// close-on-exec) if a descriptor were already one of them: keep ours above 2.
absl::StatusOr<UniqueFd> aboveStdio(int fd, absl::string_view what) {
  if (fd < 0) return absl::ErrnoToStatus(errno, std::string(what));
  UniqueFd owned(fd);
  if (fd > 2) return owned;
  const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (moved < 0) return absl::ErrnoToStatus(errno, std::string(what));
  return UniqueFd(moved);
}

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> cloexecPipe(absl::string_view what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, std::string(what));
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  auto r = aboveStdio(read_end.release(), what);
  if (!r.ok()) return r.status();
  auto w = aboveStdio(write_end.release(), what);
  if (!w.ok()) return w.status();
  return std::make_pair(std::move(*r), std::move(*w));
}

struct ChildFailure {
  int32_t step = 0;  // 0: none
  int32_t error = 0;
};

// What the child needs, prepared by the parent and kept until the child has exec'd (or
// exited): the argument strings, their pointer arrays, the child's stack.
struct ChildSetup {
  std::vector<std::string> strings;
  std::vector<char*> argv;
  std::vector<char*> envp;
  pid_t parent = 0;
  int netns_fd = -1;
  int devnull = -1;
  int stderr_w = -1;
  int status_w = -1;
  FdClosing fd_closing = FdClosing::kCloseRangeCloexec;
  long fd_limit = 0;  // RLIMIT_NOFILE's soft limit, for kProcSelfFd and kUpToLimit
  std::unique_ptr<char[]> stack;
};

// The child's stack: runChild makes raw system calls only.
constexpr size_t kChildStackBytes = 16 * 1024;

// struct linux_dirent64, which glibc does not declare.
struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[1];  // NUL-terminated, d_reclen - 19 bytes at most
};

// The child's own /proc/self/fd (the child is a process of its own: "self" is the child, and its
// descriptor table a copy of the parent's at clone()). The directory's position is the
// descriptor number, so closing what was listed does not disturb the listing. Returns the
// directory's open() error when /proc is not there.
long closeListedDescriptors(int keep) {
  const long dir = rawSyscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/fd"),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return dir;
  alignas(8) char buffer[2048];  // on the child's 16 KB stack
  long result;
  while ((result = rawSyscall(SYS_getdents64, dir, reinterpret_cast<long>(buffer),
                              sizeof(buffer))) > 0) {
    for (long offset = 0; offset < result;) {
      const auto* entry = reinterpret_cast<const LinuxDirent64*>(buffer + offset);
      offset += entry->d_reclen;
      long fd = 0;
      const char* c = entry->d_name;
      for (; *c >= '0' && *c <= '9' && fd < (1L << 31); ++c) fd = fd * 10 + (*c - '0');
      if (c == entry->d_name || *c != '\0') continue;  // "." and ".."
      if (fd > STDERR_FILENO && fd != dir && fd != keep) rawSyscall(SYS_close, fd);
    }
  }
  rawSyscall(SYS_close, dir);
  return result;
}

// Leaves 0-2 and `keep` (the status pipe, close-on-exec) open and nothing else at exec.
long closeInheritedDescriptors(const ChildSetup& setup) {
  switch (setup.fd_closing) {
    case FdClosing::kCloseRangeCloexec:
      return rawSyscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC);
    case FdClosing::kCloseRange:
      if (setup.status_w > 3) {  // close_range(3, 2) would be EINVAL
        if (const long r = rawSyscall(SYS_close_range, 3, setup.status_w - 1, 0); r < 0) return r;
      }
      return rawSyscall(SYS_close_range, setup.status_w + 1, ~0U, 0);
    case FdClosing::kProcSelfFd:
      // /proc gone since the probe (a chroot, an unmount): the slow way still works.
      if (closeListedDescriptors(setup.status_w) >= 0) return 0;
      [[fallthrough]];
    case FdClosing::kUpToLimit:
      for (long fd = 3; fd < setup.fd_limit; ++fd) {
        if (fd != setup.status_w) rawSyscall(SYS_close, fd);
      }
      return 0;
  }
  return -EINVAL;
}

// Runs in the child, on its own stack in the parent's memory, beside the parent's threads:
// raw system calls only, no allocation, no locks, no errno.
int runChild(void* arg) {
  const ChildSetup& setup = *static_cast<const ChildSetup*>(arg);
  const auto fail = [&setup](int step, long result) {
    const ChildFailure failure{step, static_cast<int32_t>(-result)};
    rawSyscall(SYS_write, setup.status_w, reinterpret_cast<long>(&failure), sizeof(failure));
    rawSyscall(SYS_exit_group, 127);
  };
  long r = rawSyscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL);
  if (r < 0) fail(kPdeathsig, r);
  if (rawSyscall(SYS_getppid) != setup.parent) rawSyscall(SYS_exit_group, 127);
  if (setup.netns_fd >= 0) {
    r = rawSyscall(SYS_setns, setup.netns_fd, CLONE_NEWNET);
    if (r < 0) fail(kSetns, r);
  }
  // dup3, not dup2 (which aarch64 lacks): the descriptors are above 2, so never equal.
  if ((r = rawSyscall(SYS_dup3, setup.devnull, STDIN_FILENO, 0)) < 0 ||
      (r = rawSyscall(SYS_dup3, setup.devnull, STDOUT_FILENO, 0)) < 0 ||
      (r = rawSyscall(SYS_dup3, setup.stderr_w, STDERR_FILENO, 0)) < 0) {
    fail(kStdio, r);
  }
  // Default dispositions first (the kernel's struct sigaction, all zero: SIG_DFL, no flags, no
  // mask), then the empty mask: a handler of the parent's must never run here, on its memory.
  // The child has its own copy of the handler table (no CLONE_SIGHAND).
  const unsigned long default_action[4] = {};
  for (long sig = 1; sig <= 64; ++sig) {
    rawSyscall(SYS_rt_sigaction, sig, reinterpret_cast<long>(default_action), 0, 8);
  }
  const unsigned long no_signals = 0;
  rawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&no_signals), 0, 8);
  r = closeInheritedDescriptors(setup);
  if (r < 0) fail(kCloseInherited, r);
  r = rawSyscall(SYS_execve, reinterpret_cast<long>(setup.argv[0]),
                 reinterpret_cast<long>(setup.argv.data()),
                 reinterpret_cast<long>(setup.envp.data()));
  fail(kExec, r);
  return 127;  // not reached: fail() exits
}

// Blocks every signal in the calling thread while it lives, then restores its mask: a signal
// arriving between clone() and the child's own reset must not run a handler on its stack.
class BlockAllSignals {
 public:
  BlockAllSignals() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~BlockAllSignals() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

 private:
  sigset_t saved_;
};

}  // namespace

absl::StatusOr<SpawnedChild> startChild(const SpawnSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return absl::InvalidArgumentError("spawn: argv[0] must be an absolute path");
  }
  auto setup = std::make_shared<ChildSetup>();
  setup->strings = spec.argv;
  setup->strings.insert(setup->strings.end(), spec.env.begin(), spec.env.end());
  for (size_t i = 0; i < setup->strings.size(); ++i) {
    (i < spec.argv.size() ? setup->argv : setup->envp).push_back(setup->strings[i].data());
  }
  setup->argv.push_back(nullptr);
  setup->envp.push_back(nullptr);
  setup->stack.reset(new char[kChildStackBytes]);

  auto devnull = aboveStdio(::open("/dev/null", O_RDWR | O_CLOEXEC), "open /dev/null");
  if (!devnull.ok()) return devnull.status();
  auto stderr_pipe = cloexecPipe("stderr pipe");
  if (!stderr_pipe.ok()) return stderr_pipe.status();
  auto status_pipe = cloexecPipe("status pipe");
  if (!status_pipe.ok()) return status_pipe.status();
  auto& [stderr_r, stderr_w] = *stderr_pipe;
  auto& [status_r, status_w] = *status_pipe;
  // Before the child exists, so that no failure after it leaves a running child behind. Only
  // the read end: the child's stderr stays blocking.
  if (::fcntl(stderr_r.get(), F_SETFL, O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, "stderr pipe O_NONBLOCK");
  }
  setup->parent = ::getpid();
  setup->netns_fd = spec.netns_fd;
  setup->devnull = devnull->get();
  setup->stderr_w = stderr_w.get();
  setup->status_w = status_w.get();
  setup->fd_closing = kernelFeatures().fdClosing();
  if (setup->fd_closing == FdClosing::kProcSelfFd || setup->fd_closing == FdClosing::kUpToLimit) {
    rlimit nofile = {};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) != 0) return absl::ErrnoToStatus(errno, "getrlimit");
    // Descriptors at or above the soft limit exist only if it was lowered after they were
    // opened; RLIM_INFINITY is not a value RLIMIT_NOFILE takes (fs.nr_open caps it).
    setup->fd_limit = static_cast<long>(std::min<rlim_t>(nofile.rlim_cur, 1L << 31));
  }

  int pidfd_number = -1;
  pid_t pid;
  {
    const BlockAllSignals blocked;
    pid = ::clone(runChild, setup->stack.get() + kChildStackBytes, CLONE_VM | CLONE_PIDFD | SIGCHLD,
                  setup.get(), &pidfd_number);
  }
  if (pid < 0) return absl::ErrnoToStatus(errno, "clone");
  // The child holds its own copies of the descriptors; these close once it has exec'd or
  // exited, which is why the status pipe reads EOF then. `setup` must live that long too.
  SpawnedChild child;
  child.pid = pid;
  child.pidfd = UniqueFd(pidfd_number);
  child.stderr_fd = std::move(stderr_r);
  child.exec_status = std::move(status_r);
  child.until_exec = std::shared_ptr<void>(setup, setup.get());
  return child;
}

absl::Status execFailure(int exec_status, const std::string& program) {
  ChildFailure failure;
  ssize_t n;
  do {
    n = ::read(exec_status, &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n == 0) return absl::OkStatus();
  if (n != static_cast<ssize_t>(sizeof(failure))) {
    return absl::InternalError("spawn: the child failed before exec and said nothing clear");
  }
  return absl::ErrnoToStatus(failure.error,
                             absl::StrCat("spawn ", program, ": ", describeStep(failure.step)));
}

absl::StatusOr<SpawnedChild> spawnChild(const SpawnSpec& spec) {
  auto child = startChild(spec);
  if (!child.ok()) return child.status();
  if (absl::Status failed = execFailure(child->exec_status.get(), spec.argv[0]); !failed.ok()) {
    (void)reapChild(child->pidfd.get(), /*wait=*/true);
    return failed;
  }
  child->until_exec.reset();
  return child;
}

int sendSignal(int pidfd, int signal) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0));
}

void killAndReap(int pidfd) {
  sendSignal(pidfd, SIGKILL);
  (void)reapChild(pidfd, /*wait=*/true);
}

absl::StatusOr<ExitStatus> reapChild(int pidfd, bool wait) {
  siginfo_t info = {};
  int rc;
  do {
    rc = ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | (wait ? 0 : WNOHANG));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return absl::ErrnoToStatus(errno, "waitid(P_PIDFD)");
  if (info.si_pid == 0) return absl::UnavailableError("the child is still running");
  ExitStatus status;
  if (info.si_code == CLD_EXITED) {
    status.exit_code = info.si_status;
  } else {
    status.signal = info.si_status;
  }
  return status;
}

LineTail::LineTail(size_t max_lines, size_t max_line_length)
    : max_lines_(max_lines), max_line_length_(max_line_length) {}

void LineTail::pushLine(std::string line) {
  lines_.push_back(std::move(line));
  while (lines_.size() > max_lines_) lines_.pop_front();
}

void LineTail::append(absl::string_view bytes) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    for (const char c : bytes.substr(0, newline)) {
      // The tail ends up in Events and JSON, which need valid UTF-8: an interface name or a
      // cut can carry any byte, so only printable ASCII passes as it is.
      const unsigned char byte = static_cast<unsigned char>(c);
      const bool printable = byte >= 0x20 && byte < 0x7f;
      const size_t width = printable ? 1 : 4;  // \xNN
      if (partial_cut_ || partial_.size() + width > max_line_length_) {
        partial_cut_ = true;
        break;
      }
      if (printable) {
        partial_.push_back(c);
      } else {
        absl::StrAppend(&partial_, "\\x", absl::Hex(byte, absl::kZeroPad2));
      }
    }
    if (newline == absl::string_view::npos) break;
    pushLine(std::move(partial_));
    partial_.clear();
    partial_cut_ = false;
    bytes.remove_prefix(newline + 1);
  }
}

bool LineTail::readFrom(int fd, std::string* read) {
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      const absl::string_view bytes(buffer, static_cast<size_t>(n));
      append(bytes);
      if (read != nullptr) read->append(bytes.data(), bytes.size());
    } else if (n == 0) {
      return true;
    } else if (errno != EINTR) {
      return errno != EAGAIN;
    }
  }
}

std::string LineTail::text() const {
  std::string text = absl::StrJoin(lines_, "\n");
  if (!partial_.empty()) absl::StrAppend(&text, text.empty() ? "" : "\n", partial_);
  return text;
}

absl::StatusOr<Completion> runToCompletion(const SpawnSpec& spec,
                                           std::chrono::milliseconds timeout) {
  auto child = spawnChild(spec);
  if (!child.ok()) return child.status();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  LineTail tail;
  bool stderr_open = true;
  while (true) {
    pollfd fds[2] = {{child->pidfd.get(), POLLIN, 0}, {child->stderr_fd.get(), POLLIN, 0}};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      killAndReap(child->pidfd.get());
      return absl::DeadlineExceededError(
          absl::StrCat(spec.argv[0], " did not finish within ", timeout.count(), " ms; killed it"));
    }
    const int ready = ::poll(fds, stderr_open ? 2 : 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) {
      const absl::Status status = absl::ErrnoToStatus(errno, "poll");
      killAndReap(child->pidfd.get());
      return status;
    }
    if (stderr_open && (fds[1].revents & (POLLIN | POLLHUP))) {
      stderr_open = !tail.readFrom(child->stderr_fd.get());
    }
    if (fds[0].revents & POLLIN) break;
  }
  tail.readFrom(child->stderr_fd.get());
  auto status = reapChild(child->pidfd.get(), /*wait=*/true);
  if (!status.ok()) return status.status();
  return Completion{*status, tail.text()};
}

}  // namespace proc

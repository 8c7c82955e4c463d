#include "proc/spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace proc {
namespace {

// What the child reports through the status pipe when a step before exec fails.
enum ChildStep : int { kPdeathsig = 1, kSetns, kStdio, kCloseRange, kExec };

const char* describeStep(int step) {
  switch (step) {
    case kPdeathsig:
      return "prctl(PR_SET_PDEATHSIG)";
    case kSetns:
      return "setns(CLONE_NEWNET)";
    case kStdio:
      return "redirecting stdin/stdout/stderr";
    case kCloseRange:
      return "close_range(CLOSE_RANGE_CLOEXEC)";
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

std::vector<char*> cStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

struct ChildFailure {
  int step;
  int error;
};

// Runs in the forked child: async-signal-safe calls only, no allocation, no locks.
[[noreturn]] void runChild(pid_t parent, int netns_fd, int devnull, int stderr_w, int status_w,
                           char* const* argv, char* const* envp) {
  const auto fail = [status_w](int step) {
    const ChildFailure failure{step, errno};
    [[maybe_unused]] ssize_t ignored = ::write(status_w, &failure, sizeof(failure));
    ::_exit(127);
  };
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail(kPdeathsig);
  if (::getppid() != parent) ::_exit(127);
  if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) fail(kSetns);
  if (::dup2(devnull, STDIN_FILENO) < 0 || ::dup2(devnull, STDOUT_FILENO) < 0 ||
      ::dup2(stderr_w, STDERR_FILENO) < 0) {
    fail(kStdio);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) fail(kCloseRange);
  ::execve(argv[0], argv, envp);
  fail(kExec);
  ::_exit(127);  // not reached: fail() exits
}

// Before a pidfd exists, the only handle on the child is its pid.
void reapPid(pid_t pid) {
  int wstatus;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

absl::StatusOr<SpawnedChild> spawnChild(const SpawnSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return absl::InvalidArgumentError("spawn: argv[0] must be an absolute path");
  }
  const std::vector<char*> argv = cStrings(spec.argv);
  const std::vector<char*> envp = cStrings(spec.env);
  auto devnull = aboveStdio(::open("/dev/null", O_RDWR | O_CLOEXEC), "open /dev/null");
  if (!devnull.ok()) return devnull.status();
  auto stderr_pipe = cloexecPipe("stderr pipe");
  if (!stderr_pipe.ok()) return stderr_pipe.status();
  auto status_pipe = cloexecPipe("status pipe");
  if (!status_pipe.ok()) return status_pipe.status();
  auto& [stderr_r, stderr_w] = *stderr_pipe;
  auto& [status_r, status_w] = *status_pipe;
  // Before fork, so that no failure after it leaves a running child behind. Only the read end:
  // the child's stderr stays blocking.
  if (::fcntl(stderr_r.get(), F_SETFL, O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, "stderr pipe O_NONBLOCK");
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork");
  if (pid == 0) {
    runChild(parent, spec.netns_fd, devnull->get(), stderr_w.get(), status_w.get(), argv.data(),
             envp.data());
  }
  stderr_w.reset();
  status_w.reset();

  // EOF means execve succeeded (the close-on-exec write end went away with it).
  ChildFailure failure{};
  ssize_t n;
  do {
    n = ::read(status_r.get(), &failure, sizeof(failure));
  } while (n < 0 && errno == EINTR);
  if (n != 0) {
    reapPid(pid);
    if (n != static_cast<ssize_t>(sizeof(failure))) {
      return absl::InternalError("spawn: the child failed before exec and said nothing clear");
    }
    return absl::ErrnoToStatus(
        failure.error, absl::StrCat("spawn ", spec.argv[0], ": ", describeStep(failure.step)));
  }

  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.valid()) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    reapPid(pid);
    return absl::ErrnoToStatus(error, "pidfd_open");
  }
  SpawnedChild child;
  child.pid = pid;
  child.pidfd = std::move(pidfd);
  child.stderr_fd = std::move(stderr_r);
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

bool LineTail::readFrom(int fd) {
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n > 0) {
      append(absl::string_view(buffer, static_cast<size_t>(n)));
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

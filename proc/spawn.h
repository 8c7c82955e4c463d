#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proc/exit_status.h"
#include "proc/unique_fd.h"

namespace proc {

// (setns) + exec of one program in a new process, never through a shell.
//
// The child is made with clone(CLONE_VM), as posix_spawn makes its own: it borrows this
// process's memory (its own stack, the argument strings) until it execs, so nothing is copied.
// fork() copied the page tables of the whole controller, gRPC and all, and made every page it
// wrote afterwards fault once more: 15 ms of the controller's CPU per tcpdump. And the caller
// does not wait for the exec (startChild): under load, with a node's worth of tcpdumps starting
// at once, a child waits tens of milliseconds for a CPU to exec on.
//
// Everything that allocates happens in the parent before clone(); the child makes raw system
// calls only (no libc: it runs beside the parent's threads, on their memory, and must not even
// set errno), in this order:
//   prctl(PR_SET_PDEATHSIG, SIGKILL), then getppid() to catch a parent that died first;
//   setns(netns_fd, CLONE_NEWNET) when a namespace is given;
//   stdin and stdout from/to /dev/null, stderr to a pipe the parent reads;
//   default dispositions and an empty signal mask (both survive exec, and a parent that
//   blocks or ignores SIGTERM would otherwise make the child deaf to it);
//   no inherited descriptor survives exec: close_range(3, ~0, CLOSE_RANGE_CLOEXEC), or on a
//   kernel without it another way (kernelFeatures().fdClosing(), kernel_features.h);
//   execve(argv[0]) with an explicit environment.
// A failure of any of these reaches the parent through a close-on-exec pipe (exec_status): EOF
// when the exec happened, the failed step and errno otherwise (execFailure()).
//
// PR_SET_PDEATHSIG fires when the *thread* that started the child exits, not the process:
// start from a thread that lives as long as the child should (the controller's worker). Needs
// Linux 5.4 (CLONE_PIDFD 5.2, pollable pidfds 5.3, waitid(P_PIDFD) 5.4): checkKernelFloor().
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is the program's absolute path
  std::vector<std::string> env;   // "NAME=value"
  int netns_fd = -1;              // enter this network namespace first, when >= 0
};

struct SpawnedChild {
  pid_t pid = -1;
  UniqueFd pidfd;        // readable once the child has exited; not yet reaped
  UniqueFd stderr_fd;    // the child's stderr, non-blocking, close-on-exec
  UniqueFd exec_status;  // readable at the exec (EOF) or at a failure before it
  // What the child uses until it execs: keep it until exec_status is readable or the child
  // has exited.
  std::shared_ptr<void> until_exec;
};

// Starts the child and returns at once, before it execs.
absl::StatusOr<SpawnedChild> startChild(const SpawnSpec& spec);
// Once exec_status is readable: OK when the child exec'd, else what failed before ("spawn
// /usr/bin/tcpdump: setns(CLONE_NEWNET): Operation not permitted"). Reads the descriptor.
absl::Status execFailure(int exec_status, const std::string& program);
// startChild, then waits for the exec: a failure before it is an error, the child reaped.
absl::StatusOr<SpawnedChild> spawnChild(const SpawnSpec& spec);

// pidfd_send_signal(2). glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37), so the
// system call is made directly.
int sendSignal(int pidfd, int signal);

// Reaps the exited child behind `pidfd` (waitid P_PIDFD: never another process's child).
absl::StatusOr<ExitStatus> reapChild(int pidfd, bool wait);

// SIGKILL, then reap: for a child that must be gone now, whatever it was doing.
void killAndReap(int pidfd);

// The last lines a child wrote, for error reports: bounded in lines and in line length (in
// the characters kept). Only printable ASCII is kept as it is; any other byte becomes \xNN, so
// that the text is valid UTF-8 whatever the child wrote.
class LineTail {
 public:
  explicit LineTail(size_t max_lines = 5, size_t max_line_length = 400);
  void append(absl::string_view bytes);
  // Reads what `fd` (non-blocking) has now; true once it reached end of file. What it read is
  // also appended to `read`, when given.
  bool readFrom(int fd, std::string* read = nullptr);
  std::string text() const;  // the kept lines joined with "\n", the unfinished one last

 private:
  void pushLine(std::string line);
  size_t max_lines_;
  size_t max_line_length_;
  std::deque<std::string> lines_;
  std::string partial_;
  bool partial_cut_ = false;  // the unfinished line reached max_line_length
};

struct Completion {
  ExitStatus status;
  std::string stderr_tail;
};

// Runs a short command to completion (the tcpdump probe). Past `timeout` the child is killed
// and the result is DeadlineExceeded.
absl::StatusOr<Completion> runToCompletion(const SpawnSpec& spec,
                                           std::chrono::milliseconds timeout);

}  // namespace proc

#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proc/exit_status.h"
#include "proc/unique_fd.h"

namespace proc {

// fork + (setns) + exec of one program, never through a shell.
//
// Everything that allocates happens in the parent before fork(); the child only makes
// async-signal-safe system calls, in this order:
//   prctl(PR_SET_PDEATHSIG, SIGKILL), then getppid() to catch a parent that died first;
//   setns(netns_fd, CLONE_NEWNET) when a namespace is given;
//   stdin and stdout from/to /dev/null, stderr to a pipe the parent reads;
//   an empty signal mask and default dispositions (both survive exec, and a parent that
//   blocks or ignores SIGTERM would otherwise make the child deaf to it);
//   close_range(3, ~0, CLOSE_RANGE_CLOEXEC) so no inherited descriptor survives exec;
//   execve(argv[0]) with an explicit environment.
// A failure of any of these reaches the parent through a close-on-exec pipe, so spawn()
// returns it as an error instead of a child that exits with a mysterious status.
//
// PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process: spawn from a
// thread that lives as long as the child should (the controller's worker). Needs Linux 5.11
// (CLOSE_RANGE_CLOEXEC; pidfds need 5.4).
struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is the program's absolute path
  std::vector<std::string> env;   // "NAME=value"
  int netns_fd = -1;              // enter this network namespace first, when >= 0
};

struct SpawnedChild {
  pid_t pid = -1;
  UniqueFd pidfd;      // readable once the child has exited; not yet reaped
  UniqueFd stderr_fd;  // the child's stderr, non-blocking, close-on-exec
};

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
  // Reads what `fd` (non-blocking) has now; true once it reached end of file.
  bool readFrom(int fd);
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

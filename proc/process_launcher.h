#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/clock.h"
#include "proc/exit_status.h"

namespace proc {

using base::Duration;

using ProcessId = uint64_t;  // the launcher's own handle: never reused, unlike a pid

struct LaunchSpec {
  std::string owner;  // the Pod UID, handed back with the process's exit
  std::vector<std::string> argv;
  std::string netns_path;   // the sandbox's network namespace, as the CRI reported it
  int64_t sandbox_pid = 0;  // for the /proc/<pid>/ns/net fallback; 0 when unknown
  std::string sandbox_id;   // the fallback checks that the pid is this sandbox's process
};

struct LaunchedProcess {
  ProcessId id = 0;
  pid_t pid = -1;
  std::string netns_path;  // the path actually entered (netns_path or the /proc fallback)
};

struct ProcessExit {
  ProcessId id = 0;
  std::string owner;
  ExitStatus status;
  std::string stderr_tail;  // the last lines the process wrote to stderr
};

// Starts and stops processes inside a Pod's network namespace. The seam between the
// reconciler and fork/exec: unit tests use a fake that records calls and simulates exits.
class ProcessLauncher {
 public:
  using ExitHandler = std::function<void(ProcessExit)>;
  virtual ~ProcessLauncher() = default;

  // Receives every exit that stop() did not reap (one by itself, or one that outlived stop()'s
  // DeadlineExceeded), on the launcher's own thread: the handler
  // must only post the exit somewhere. After setExitHandler returns, the previous handler is
  // no longer running and will not be called again.
  virtual void setExitHandler(ExitHandler handler) = 0;

  virtual absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) = 0;

  // SIGTERM (tcpdump flushes and closes its file), up to `grace` to exit, then SIGKILL; the
  // process is reaped before this returns OK. NotFound when the process had already exited by
  // itself; DeadlineExceeded when even SIGKILL did not end it in time (uninterruptible sleep).
  // Either way that exit went, or goes, to the exit handler.
  virtual absl::StatusOr<ProcessExit> stop(ProcessId id, Duration grace) = 0;
};

}  // namespace proc

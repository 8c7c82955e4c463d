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
  // Set when the child failed before the program ran (its exec, or a step before it such as
  // entering the netns): what failed. start() returns before the exec, so this comes here.
  std::string start_error;
};

// What a process wrote to stderr, as it arrives: a chunk may end anywhere, even inside a line.
// Every chunk of a process reaches the output handler before its exit reaches the exit handler.
struct ProcessOutput {
  ProcessId id = 0;
  std::string owner;
  std::string text;
};

// Starts processes inside a Pod's network namespace and signals them; every exit, whoever
// caused it, reaches the exit handler, and what they write to stderr the output handler. The seam
// between the capture policy and fork/exec: unit tests use a fake that records calls and simulates
// exits. Nothing here waits for a process: stopping one is a signal now and its exit later.
class ProcessLauncher {
 public:
  using ExitHandler = std::function<void(ProcessExit)>;
  using OutputHandler = std::function<void(ProcessOutput)>;
  virtual ~ProcessLauncher() = default;

  // Receives every exit, once, on the launcher's own thread: the handler must only post the
  // exit somewhere. After setExitHandler returns, the previous handler is no longer running and
  // will not be called again.
  virtual void setExitHandler(ExitHandler handler) = 0;
  // The same for stderr's chunks, on the same thread (tcpdump's statistics: see SIGUSR1).
  virtual void setOutputHandler(OutputHandler handler) = 0;

  // Returns once the child exists, before it execs (see ProcessExit::start_error).
  virtual absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) = 0;

  // Sends `signal` (SIGTERM: tcpdump flushes and closes its file; SIGKILL; SIGUSR1: tcpdump
  // prints its counts) to the process.
  // NotFound once its exit was reported, or is on its way to the handler.
  virtual absl::Status signal(ProcessId id, int signal) = 0;
};

}  // namespace proc

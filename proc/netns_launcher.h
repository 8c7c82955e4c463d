#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "proc/process_launcher.h"
#include "proc/spawn.h"
#include "proc/unique_fd.h"

namespace proc {

// The real ProcessLauncher: enters the sandbox's network namespace (checked by
// openSandboxNetns), starts the child with startChild() without waiting for its exec, and
// reaps its own children through pidfds in one epoll thread, which also learns from each
// child's status pipe whether its exec happened. It never calls waitpid(-1) and installs no SIGCHLD
// handler, so it cannot steal another component's children. The same thread reads each child's
// stderr, hands it to the output handler as it comes and keeps the last lines for the exit
// report.
//
// Call start() from a thread that outlives the children (see spawn.h: PR_SET_PDEATHSIG follows
// the forking thread).
class NetnsLauncher : public ProcessLauncher {
 public:
  struct Options {
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  };

  static absl::StatusOr<std::unique_ptr<NetnsLauncher>> create(Options options);
  ~NetnsLauncher() override;  // kills and reaps whatever still runs

  void setExitHandler(ExitHandler handler) override;
  void setOutputHandler(OutputHandler handler) override;
  absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) override;
  absl::Status signal(ProcessId id, int signal) override;

  size_t running() const;

 private:
  struct Process {
    pid_t pid = -1;
    std::string owner;
    std::string program;
    UniqueFd pidfd;
    UniqueFd stderr_fd;
    UniqueFd exec_status;              // until the exec, or the failure before it, is read
    std::shared_ptr<void> until_exec;  // what the child uses until it execs
    std::string start_error;
    bool stderr_watched = true;
    // Room for tcpdump's error lines besides its banner and up to four lines of statistics.
    LineTail stderr_tail{/*max_lines=*/8};
  };

  NetnsLauncher(Options options, UniqueFd epoll, UniqueFd wake);
  void reapLoop();
  void onReadable(ProcessId id, int what);
  void readExecStatus(Process& process);
  void finish(std::map<ProcessId, std::unique_ptr<Process>>::iterator it,
              std::unique_lock<std::mutex>& lock);
  // Outside mu_, under handler_mu_ (what the handlers are called under).
  void deliverOutput(ProcessOutput output);
  void unwatchStderr(Process& process);

  const Options options_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd that interrupts epoll_wait at shutdown
  std::atomic<bool> shutting_down_{false};

  mutable std::mutex mu_;
  std::map<ProcessId, std::unique_ptr<Process>> processes_;
  ProcessId next_id_ = 1;

  std::mutex handler_mu_;  // held while a handler runs, so replacing it waits for that
  ExitHandler handler_;
  OutputHandler output_handler_;

  std::thread reaper_;
};

}  // namespace proc

#pragma once

#include <atomic>
#include <condition_variable>
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
// openSandboxNetns), spawns with spawnChild(), and reaps its own children through pidfds in
// one epoll thread. It never calls waitpid(-1) and installs no SIGCHLD handler, so it cannot
// steal another component's children. The same thread reads each child's stderr, keeping the
// last lines for the exit report.
//
// Call start() from a thread that outlives the children (see spawn.h: PR_SET_PDEATHSIG follows
// the forking thread).
class NetnsLauncher : public ProcessLauncher {
 public:
  struct Options {
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
    // After SIGKILL, how long stop() waits for the kernel to finish the process.
    Duration kill_wait = std::chrono::seconds(5);
  };

  static absl::StatusOr<std::unique_ptr<NetnsLauncher>> create(Options options);
  ~NetnsLauncher() override;  // kills and reaps whatever still runs

  void setExitHandler(ExitHandler handler) override;
  absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) override;
  absl::StatusOr<ProcessExit> stop(ProcessId id, Duration grace) override;

  size_t running() const;

 private:
  struct Process {
    pid_t pid = -1;
    std::string owner;
    UniqueFd pidfd;
    UniqueFd stderr_fd;
    bool stderr_watched = true;
    // Room for tcpdump's error lines besides its banner and up to four lines of statistics.
    LineTail stderr_tail{/*max_lines=*/8};
    bool stopping = false;              // stop() waits for it: no exit handler
    std::optional<ProcessExit> exited;  // set by the reaper for a stopping process
  };

  NetnsLauncher(Options options, UniqueFd epoll, UniqueFd wake);
  void reapLoop();
  void onReadable(ProcessId id, bool is_stderr);
  void finish(std::map<ProcessId, std::unique_ptr<Process>>::iterator it,
              std::unique_lock<std::mutex>& lock);
  void unwatchStderr(Process& process);

  const Options options_;
  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd that interrupts epoll_wait at shutdown
  std::atomic<bool> shutting_down_{false};

  mutable std::mutex mu_;
  std::condition_variable exited_;
  std::map<ProcessId, std::unique_ptr<Process>> processes_;
  ProcessId next_id_ = 1;

  std::mutex handler_mu_;  // held while the handler runs, so replacing it waits for that
  ExitHandler handler_;

  std::thread reaper_;
};

}  // namespace proc

#include "proc/netns_launcher.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "absl/strings/str_cat.h"
#include "base/thread_step.h"
#include "glog/logging.h"
#include "proc/netns.h"

namespace proc {
namespace {

// epoll_event.data: 0 is the wake-up eventfd, otherwise (id << 2) | what became readable.
constexpr uint64_t kWakeTag = 0;
enum Watched : uint64_t { kExit = 0, kStderr = 1, kExecStatus = 2 };
uint64_t tagOf(ProcessId id, Watched what) { return (id << 2) | what; }

}  // namespace

absl::StatusOr<std::unique_ptr<NetnsLauncher>> NetnsLauncher::create(Options options) {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return absl::ErrnoToStatus(errno, "epoll_create1");
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return absl::ErrnoToStatus(errno, "eventfd");
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = kWakeTag;
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &event) != 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl(eventfd)");
  }
  return std::unique_ptr<NetnsLauncher>(
      new NetnsLauncher(std::move(options), std::move(epoll), std::move(wake)));
}

NetnsLauncher::NetnsLauncher(Options options, UniqueFd epoll, UniqueFd wake)
    : options_(std::move(options)), epoll_(std::move(epoll)), wake_(std::move(wake)) {
  reaper_ = std::thread([this] { reapLoop(); });
}

NetnsLauncher::~NetnsLauncher() {
  shutting_down_ = true;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t ignored = ::write(wake_.get(), &one, sizeof(one));
  reaper_.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, process] : processes_) {
    LOG(WARNING) << "killing pid " << process->pid << " (" << process->owner
                 << "): the launcher is going away";
    killAndReap(process->pidfd.get());
  }
}

void NetnsLauncher::setExitHandler(ExitHandler handler) {
  std::lock_guard<std::mutex> lock(handler_mu_);
  handler_ = std::move(handler);
}

void NetnsLauncher::setOutputHandler(OutputHandler handler) {
  std::lock_guard<std::mutex> lock(handler_mu_);
  output_handler_ = std::move(handler);
}

void NetnsLauncher::deliverOutput(ProcessOutput output) {
  if (output.text.empty()) return;
  std::lock_guard<std::mutex> handler_lock(handler_mu_);
  if (output_handler_) output_handler_(std::move(output));
}

size_t NetnsLauncher::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return processes_.size();
}

absl::StatusOr<LaunchedProcess> NetnsLauncher::start(const LaunchSpec& spec) {
  auto netns = openSandboxNetns(spec.netns_path, spec.sandbox_pid, spec.sandbox_id);
  if (!netns.ok()) return netns.status();
  // Not waiting for the exec: a failure before it comes with the exit (start_error).
  auto child = startChild(SpawnSpec{spec.argv, options_.env, netns->fd.get()});
  if (!child.ok()) return child.status();

  std::lock_guard<std::mutex> lock(mu_);
  const ProcessId id = next_id_++;
  auto process = std::make_unique<Process>();
  process->pid = child->pid;
  process->owner = spec.owner;
  process->program = spec.argv.front();
  process->pidfd = std::move(child->pidfd);
  process->stderr_fd = std::move(child->stderr_fd);
  process->exec_status = std::move(child->exec_status);
  process->until_exec = std::move(child->until_exec);
  for (const Watched what : {kExit, kStderr, kExecStatus}) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = tagOf(id, what);
    const int fd = what == kExit     ? process->pidfd.get()
                   : what == kStderr ? process->stderr_fd.get()
                                     : process->exec_status.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      const absl::Status status = absl::ErrnoToStatus(errno, "epoll_ctl(child)");
      for (const int added : {process->pidfd.get(), process->stderr_fd.get()}) {
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, added, nullptr);
      }
      killAndReap(process->pidfd.get());
      return status;
    }
  }
  const pid_t pid = process->pid;
  processes_.emplace(id, std::move(process));
  VLOG(1) << "started pid " << pid << " for " << spec.owner << " in " << netns->path;
  return LaunchedProcess{id, pid, netns->path};
}

absl::Status NetnsLauncher::signal(ProcessId id, int signal) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = processes_.find(id);
  if (it == processes_.end()) {
    return absl::NotFoundError(absl::StrCat("process ", id, " already exited"));
  }
  // A child that exited but is not reaped yet still takes the signal, harmlessly.
  if (sendSignal(it->second->pidfd.get(), signal) != 0 && errno != ESRCH) {
    return absl::ErrnoToStatus(errno, absl::StrCat("pidfd_send_signal to pid ", it->second->pid));
  }
  return absl::OkStatus();
}

void NetnsLauncher::reapLoop() {
  epoll_event events[32];
  while (!shutting_down_) {
    const int n = ::epoll_wait(epoll_.get(), events, 32, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG(ERROR) << "epoll_wait: " << std::strerror(errno) << "; the reaper stops";
      return;
    }
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t value;
        [[maybe_unused]] ssize_t ignored = ::read(wake_.get(), &value, sizeof(value));
        continue;
      }
      base::runThreadStep("reaper", [&] { onReadable(tag >> 2, static_cast<int>(tag & 3)); });
    }
  }
}

void NetnsLauncher::unwatchStderr(Process& process) {
  if (!process.stderr_watched) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.stderr_fd.get(), nullptr);
  process.stderr_watched = false;
}

void NetnsLauncher::readExecStatus(Process& process) {
  if (!process.exec_status.valid()) return;
  if (absl::Status failed = execFailure(process.exec_status.get(), process.program); !failed.ok()) {
    process.start_error = std::string(failed.message());
  }
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.exec_status.get(), nullptr);
  process.exec_status.reset();
  process.until_exec.reset();  // the child runs its own program now, or is gone
}

void NetnsLauncher::onReadable(ProcessId id, int what) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = processes_.find(id);
  if (it == processes_.end()) return;
  Process& process = *it->second;
  switch (what) {
    case kStderr: {
      ProcessOutput output{id, process.owner, ""};
      if (process.stderr_tail.readFrom(process.stderr_fd.get(), &output.text)) {
        unwatchStderr(process);
      }
      lock.unlock();
      deliverOutput(std::move(output));
      return;
    }
    case kExecStatus:
      readExecStatus(process);
      return;
    default:
      finish(it, lock);
  }
}

void NetnsLauncher::finish(std::map<ProcessId, std::unique_ptr<Process>>::iterator it,
                           std::unique_lock<std::mutex>& lock) {
  const ProcessId id = it->first;
  Process& process = *it->second;
  readExecStatus(process);  // its write end closed with the child: never blocks
  ProcessOutput last_output{id, process.owner, ""};
  process.stderr_tail.readFrom(process.stderr_fd.get(), &last_output.text);
  unwatchStderr(process);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.pidfd.get(), nullptr);
  ExitStatus status;
  if (auto reaped = reapChild(process.pidfd.get(), /*wait=*/false); reaped.ok()) {
    status = *reaped;
  } else {
    LOG(ERROR) << "reaping pid " << process.pid << ": " << reaped.status();
  }
  ProcessExit exit{id, process.owner, status, process.stderr_tail.text(), process.start_error};
  VLOG(1) << "pid " << process.pid << " (" << process.owner << ") " << status.describe();
  processes_.erase(it);
  lock.unlock();
  deliverOutput(std::move(last_output));  // before the exit, as promised
  std::lock_guard<std::mutex> handler_lock(handler_mu_);
  if (handler_) handler_(std::move(exit));
}

}  // namespace proc

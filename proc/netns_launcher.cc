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

// epoll_event.data: 0 is the wake-up eventfd, otherwise (id << 1) | is_stderr.
constexpr uint64_t kWakeTag = 0;
uint64_t tagOf(ProcessId id, bool is_stderr) { return (id << 1) | (is_stderr ? 1 : 0); }

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

size_t NetnsLauncher::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return processes_.size();
}

absl::StatusOr<LaunchedProcess> NetnsLauncher::start(const LaunchSpec& spec) {
  auto netns = openSandboxNetns(spec.netns_path, spec.sandbox_pid, spec.sandbox_id);
  if (!netns.ok()) return netns.status();
  auto child = spawnChild(SpawnSpec{spec.argv, options_.env, netns->fd.get()});
  if (!child.ok()) return child.status();

  std::lock_guard<std::mutex> lock(mu_);
  const ProcessId id = next_id_++;
  auto process = std::make_unique<Process>();
  process->pid = child->pid;
  process->owner = spec.owner;
  process->pidfd = std::move(child->pidfd);
  process->stderr_fd = std::move(child->stderr_fd);
  for (const bool is_stderr : {false, true}) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = tagOf(id, is_stderr);
    const int fd = is_stderr ? process->stderr_fd.get() : process->pidfd.get();
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      const absl::Status status = absl::ErrnoToStatus(errno, "epoll_ctl(child)");
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process->pidfd.get(), nullptr);
      killAndReap(process->pidfd.get());
      return status;
    }
  }
  const pid_t pid = process->pid;
  processes_.emplace(id, std::move(process));
  VLOG(1) << "started pid " << pid << " for " << spec.owner << " in " << netns->path;
  return LaunchedProcess{id, pid, netns->path};
}

absl::StatusOr<ProcessExit> NetnsLauncher::stop(ProcessId id, Duration grace) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = processes_.find(id);
  if (it == processes_.end()) {
    return absl::NotFoundError(absl::StrCat("process ", id, " already exited"));
  }
  Process& process = *it->second;
  process.stopping = true;
  const auto exited = [&process] { return process.exited.has_value(); };
  sendSignal(process.pidfd.get(), SIGTERM);
  if (!exited_.wait_for(lock, grace, exited)) {
    LOG(WARNING) << "pid " << process.pid << " still runs " << grace.count()
                 << " ms after SIGTERM: SIGKILL";
    sendSignal(process.pidfd.get(), SIGKILL);
    if (!exited_.wait_for(lock, options_.kill_wait, exited)) {
      process.stopping = false;  // the reaper reports it to the handler whenever it ends
      return absl::DeadlineExceededError(absl::StrCat("pid ", process.pid, " survived SIGKILL for ",
                                                      options_.kill_wait.count(),
                                                      " ms (uninterruptible sleep?)"));
    }
  }
  ProcessExit exit = std::move(*process.exited);
  processes_.erase(it);
  return exit;
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
      base::runThreadStep("reaper", [&] { onReadable(tag >> 1, (tag & 1) != 0); });
    }
  }
}

void NetnsLauncher::unwatchStderr(Process& process) {
  if (!process.stderr_watched) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.stderr_fd.get(), nullptr);
  process.stderr_watched = false;
}

void NetnsLauncher::onReadable(ProcessId id, bool is_stderr) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = processes_.find(id);
  if (it == processes_.end()) return;
  Process& process = *it->second;
  if (is_stderr) {
    if (process.stderr_tail.readFrom(process.stderr_fd.get())) unwatchStderr(process);
    return;
  }
  if (process.exited) return;  // already reaped, waiting for stop() to collect it
  finish(it, lock);
}

void NetnsLauncher::finish(std::map<ProcessId, std::unique_ptr<Process>>::iterator it,
                           std::unique_lock<std::mutex>& lock) {
  const ProcessId id = it->first;
  Process& process = *it->second;
  process.stderr_tail.readFrom(process.stderr_fd.get());
  unwatchStderr(process);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, process.pidfd.get(), nullptr);
  ExitStatus status;
  if (auto reaped = reapChild(process.pidfd.get(), /*wait=*/false); reaped.ok()) {
    status = *reaped;
  } else {
    LOG(ERROR) << "reaping pid " << process.pid << ": " << reaped.status();
  }
  ProcessExit exit{id, process.owner, status, process.stderr_tail.text()};
  VLOG(1) << "pid " << process.pid << " (" << process.owner << ") " << status.describe();
  if (process.stopping) {
    process.exited = std::move(exit);
    exited_.notify_all();
    return;
  }
  processes_.erase(it);
  lock.unlock();
  std::lock_guard<std::mutex> handler_lock(handler_mu_);
  if (handler_) handler_(std::move(exit));
}

}  // namespace proc

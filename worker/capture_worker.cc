#include "worker/capture_worker.h"

#include <exception>

#include "base/thread_step.h"
#include "glog/logging.h"

namespace worker {

const base::Clock& CaptureWorker::defaultClock() {
  static const base::SteadyClock clock;
  return clock;
}

CaptureWorker::CaptureWorker(capture::CaptureOptions options, cri::SandboxResolver& resolver,
                             k8s::PodLister& pods, k8s::EventSink& events,
                             proc::ProcessLauncher& launcher, const base::Clock& clock)
    : resync_period_(options.resync_period),
      launcher_(launcher),
      reconciler_(std::move(options), resolver, pods, events, launcher, clock) {}

CaptureWorker::~CaptureWorker() { stop(); }

absl::Status CaptureWorker::start() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (worker_.joinable() || queue_.shuttingDown()) {
    return absl::FailedPreconditionError("a controller starts once");
  }
  if (absl::Status status = reconciler_.startFresh(); !status.ok()) return status;
  launcher_.setExitHandler([this](proc::ProcessExit exit) { postExit(std::move(exit)); });
  for (const std::string& uid : reconciler_.trackedPods()) queue_.add(uid);
  publish();
  last_pass_ = std::chrono::steady_clock::now();
  worker_ = std::thread([this] { run(); });
  return absl::OkStatus();
}

void CaptureWorker::stop() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (!worker_.joinable()) return;
  queue_.shutDown();
  worker_.join();
  launcher_.setExitHandler(nullptr);
}

void CaptureWorker::onAdd(const k8s::Pod& pod) { queue_.add(pod.uid); }

void CaptureWorker::onUpdate(const k8s::Pod& old_pod, const k8s::Pod& new_pod) {
  queue_.add(new_pod.uid);
  if (old_pod.uid != new_pod.uid) queue_.add(old_pod.uid);
}

void CaptureWorker::onDelete(const k8s::Pod& pod) { queue_.add(pod.uid); }

void CaptureWorker::postExit(proc::ProcessExit exit) {
  const std::string uid = exit.owner;
  {
    std::lock_guard<std::mutex> lock(exits_mu_);
    exits_[uid].push_back(std::move(exit));
  }
  queue_.add(uid);
}

std::vector<proc::ProcessExit> CaptureWorker::takeExits(const std::string& pod_uid) {
  std::lock_guard<std::mutex> lock(exits_mu_);
  auto it = exits_.find(pod_uid);
  if (it == exits_.end()) return {};
  std::vector<proc::ProcessExit> exits = std::move(it->second);
  exits_.erase(it);
  return exits;
}

void CaptureWorker::run() {
  auto next_resync = std::chrono::steady_clock::now() + resync_period_;
  while (true) {
    last_pass_ = std::chrono::steady_clock::now();
    if (std::chrono::steady_clock::now() >= next_resync) {
      for (const std::string& uid : reconciler_.trackedPods()) queue_.add(uid);
      next_resync = std::chrono::steady_clock::now() + resync_period_;
    }
    std::optional<std::string> uid = queue_.get(next_resync);
    if (queue_.shuttingDown()) break;
    if (!uid) continue;
    const bool done = base::runThreadStep("capture worker", [&] {
      for (const proc::ProcessExit& exit : takeExits(*uid)) reconciler_.recordExit(exit);
      if (std::optional<base::Duration> again = reconciler_.reconcile(*uid)) {
        queue_.addAfter(*uid, *again);
      }
    });
    if (!done) {
      LOG(ERROR) << "reconciling Pod " << *uid << " failed; retrying in 1 s";
      queue_.addAfter(*uid, std::chrono::seconds(1));
    }
    // Once per burst (a resync queues every Pod at once), not once per Pod of it.
    if (!queue_.hasDue()) publish();
  }
  reconciler_.stopAll();
  publish();
}

void CaptureWorker::publish() {
  std::vector<capture::CaptureStatus> captures = reconciler_.captures();
  const capture::CaptureStats stats = reconciler_.stats();
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  captures_ = std::move(captures);
  stats_ = stats;
}

std::vector<capture::CaptureStatus> CaptureWorker::captures() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return captures_;
}

std::optional<std::chrono::steady_clock::time_point> CaptureWorker::lastWorkerPass() const {
  const auto pass = last_pass_.load();
  if (pass == std::chrono::steady_clock::time_point::min()) return std::nullopt;
  return pass;
}

capture::CaptureStats CaptureWorker::stats() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return stats_;
}

}  // namespace worker

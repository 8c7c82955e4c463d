#include "worker/capture_worker.h"

#include <signal.h>

#include "base/thread_step.h"
#include "glog/logging.h"

namespace worker {
namespace {

// Wakes the worker to empty its inbox; never a Pod UID.
constexpr char kInbox[] = "";

}  // namespace

const base::Clock& CaptureWorker::defaultClock() {
  static const base::SteadyClock clock;
  return clock;
}

CaptureWorker::CaptureWorker(capture::CaptureOptions options, cri::SandboxResolver& resolver,
                             k8s::PodLister& pods, k8s::EventSink& events,
                             proc::ProcessLauncher& launcher, const base::Clock& clock)
    : resync_period_(options.resync_period),
      stop_grace_(options.stop_grace),
      kill_wait_(options.kill_wait),
      launcher_(launcher),
      reconciler_(std::move(options), pods, events, launcher, clock),
      lookups_(
          resolver,
          [this](SandboxLookups::Answer answer) {
            post([&](Inbox& inbox) { inbox.answers.push_back(std::move(answer)); });
          },
          [this](absl::StatusOr<cri::SandboxSnapshot> snapshot) {
            post([&](Inbox& inbox) { inbox.snapshot = std::move(snapshot); });
          },
          [this](std::string filter, absl::Status verdict) {
            post([&](Inbox& inbox) {
              inbox.filter_verdicts.emplace_back(std::move(filter), std::move(verdict));
            });
          }) {}

CaptureWorker::~CaptureWorker() { stop(); }

absl::Status CaptureWorker::start() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (worker_.joinable() || stopping_) {
    return absl::FailedPreconditionError("a capture worker starts once");
  }
  if (absl::Status status = reconciler_.startFresh(); !status.ok()) return status;
  launcher_.setOutputHandler([this](proc::ProcessOutput output) {
    post([&](Inbox& inbox) { inbox.outputs.push_back(std::move(output)); });
  });
  launcher_.setExitHandler([this](proc::ProcessExit exit) {
    post([&](Inbox& inbox) { inbox.exits.push_back(std::move(exit)); });
  });
  for (const std::string& uid : reconciler_.trackedPods()) queue_.add(uid);
  publish();
  last_pass_ = std::chrono::steady_clock::now();
  worker_ = std::thread([this] { run(); });
  return absl::OkStatus();
}

void CaptureWorker::stop() {
  std::lock_guard<std::mutex> lock(lifecycle_mu_);
  if (!worker_.joinable()) return;
  stopping_ = true;
  queue_.add(kInbox);
  worker_.join();
  queue_.shutDown();
  lookups_.stop();
  launcher_.setExitHandler(nullptr);
  launcher_.setOutputHandler(nullptr);
}

void CaptureWorker::onAdd(const k8s::Pod& pod) { queue_.add(pod.uid); }

void CaptureWorker::onUpdate(const k8s::Pod& old_pod, const k8s::Pod& new_pod) {
  queue_.add(new_pod.uid);
  if (old_pod.uid != new_pod.uid) queue_.add(old_pod.uid);
}

void CaptureWorker::onDelete(const k8s::Pod& pod) { queue_.add(pod.uid); }

void CaptureWorker::post(const std::function<void(Inbox&)>& put) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    put(inbox_);
  }
  queue_.add(kInbox);
}

void CaptureWorker::drainInbox() {
  Inbox inbox;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    std::swap(inbox, inbox_);
  }
  bool counts_changed = false;
  for (const proc::ProcessOutput& output : inbox.outputs) {
    counts_changed |= reconciler_.recordOutput(output);
  }
  // Counts change no capture's course: shown now, not at the next reconcile.
  if (counts_changed) publish();
  for (const proc::ProcessExit& exit : inbox.exits) {
    if (std::optional<std::string> uid = reconciler_.recordExit(exit)) queue_.add(*uid);
  }
  for (SandboxLookups::Answer& answer : inbox.answers) {
    reconciler_.recordSandbox(answer.pod_uid, std::move(answer.sandbox));
    queue_.add(answer.pod_uid);
  }
  for (auto& [filter, verdict] : inbox.filter_verdicts) {
    for (const std::string& uid : reconciler_.recordFilterVerdict(filter, std::move(verdict))) {
      queue_.add(uid);
    }
  }
  if (inbox.snapshot) {
    if (inbox.snapshot->ok()) {
      for (const std::string& uid : reconciler_.checkBindings(**inbox.snapshot)) queue_.add(uid);
    } else {
      VLOG(1) << "resync: no snapshot of the runtime's sandboxes: " << inbox.snapshot->status();
    }
    // Level-triggered: every capture is looked at once per resync, whatever happened. Those
    // whose binding holds cost no runtime call.
    for (const std::string& uid : reconciler_.trackedPods()) queue_.add(uid);
  }
}

void CaptureWorker::run() {
  auto next_resync = std::chrono::steady_clock::now() + resync_period_;
  while (!stopping_) {
    last_pass_ = std::chrono::steady_clock::now();
    drainInbox();
    if (std::chrono::steady_clock::now() >= next_resync) {
      VLOG(1) << "resync: asking the runtime for its sandboxes, and tcpdump for its counts";
      lookups_.snapshot();
      reconciler_.refreshCounts();
      next_resync = std::chrono::steady_clock::now() + resync_period_;
    }
    std::optional<std::string> uid = queue_.get(next_resync);
    if (!uid || *uid == kInbox) continue;
    reconcile(*uid);
    // Once per burst (a resync queues every Pod at once), not once per Pod of it.
    if (!queue_.hasDue()) publish();
  }
  shutDownCaptures();
  publish();
}

void CaptureWorker::reconcile(const std::string& uid) {
  const bool done = base::runThreadStep("capture worker", [&] {
    if (std::optional<base::Duration> again = reconciler_.reconcile(uid)) {
      queue_.addAfter(uid, *again);
    }
  });
  if (!done) {
    LOG(ERROR) << "reconciling Pod " << uid << " failed; retrying in 1 s";
    queue_.addAfter(uid, std::chrono::seconds(1));
  }
  for (const capture::SandboxLookup& lookup : reconciler_.takeLookups()) {
    lookups_.lookUp(lookup.pod_uid, lookup.sandbox_uid);
  }
  for (const std::string& filter : reconciler_.takeFilterChecks()) lookups_.checkFilter(filter);
}

void CaptureWorker::shutDownCaptures() {
  const int signalled = reconciler_.signalAll(SIGTERM);
  if (signalled == 0 && reconciler_.processes() == 0) return;
  LOG(INFO) << "stopping " << reconciler_.processes() << " tcpdump processes (SIGTERM)";
  if (waitForExits(stop_grace_)) return;
  LOG(WARNING) << reconciler_.processes() << " tcpdump processes still run " << stop_grace_.count()
               << " ms after SIGTERM: SIGKILL";
  reconciler_.signalAll(SIGKILL);
  if (waitForExits(kill_wait_)) return;
  LOG(ERROR) << reconciler_.processes() << " tcpdump processes survived SIGKILL for "
             << kill_wait_.count() << " ms (uninterruptible sleep?); they die with this process";
}

bool CaptureWorker::waitForExits(base::Duration budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  while (true) {
    drainInbox();
    if (reconciler_.processes() == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    queue_.get(deadline);  // wakes on the inbox; the Pods it returns wait for the next start
  }
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

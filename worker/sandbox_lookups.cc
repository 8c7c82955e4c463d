#include "worker/sandbox_lookups.h"

#include "base/thread_step.h"
#include "capture/filter.h"

namespace worker {

SandboxLookups::SandboxLookups(cri::SandboxResolver& resolver, OnAnswer on_answer,
                               OnSnapshot on_snapshot, OnFilterVerdict on_filter_verdict)
    : resolver_(resolver),
      on_answer_(std::move(on_answer)),
      on_snapshot_(std::move(on_snapshot)),
      on_filter_verdict_(std::move(on_filter_verdict)),
      thread_([this] { run(); }) {}

SandboxLookups::~SandboxLookups() { stop(); }

void SandboxLookups::lookUp(const std::string& pod_uid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!asked_.insert(pod_uid).second) return;
  }
  requests_.push(pod_uid);
}

void SandboxLookups::snapshot() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (std::exchange(snapshot_asked_, true)) return;
  }
  requests_.push(Snapshot{});
}

void SandboxLookups::checkFilter(const std::string& filter) {
  requests_.push(FilterCheck{filter});  // the Reconciler asks once per filter until its verdict
}

void SandboxLookups::stop() {
  requests_.close();
  if (thread_.joinable()) thread_.join();
}

void SandboxLookups::run() {
  while (std::optional<Request> request = requests_.pop()) {
    base::runThreadStep("sandbox look-ups", [&] {
      if (std::holds_alternative<Snapshot>(*request)) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          snapshot_asked_ = false;
        }
        on_snapshot_(resolver_.snapshot());
        return;
      }
      if (const auto* check = std::get_if<FilterCheck>(&*request)) {
        on_filter_verdict_(check->filter, capture::validateCaptureFilter(check->filter));
        return;
      }
      // Every look-up waiting now, answered together: one list of the node's sandboxes for a
      // burst of new captures, not one per Pod.
      std::vector<std::string> uids = {std::get<std::string>(*request)};
      std::vector<Request> later;  // snapshots asked meanwhile, after the look-ups
      while (std::optional<Request> more = requests_.tryPop()) {
        if (const auto* uid = std::get_if<std::string>(&*more)) {
          uids.push_back(*uid);
        } else {
          later.push_back(*more);
        }
        requests_.done();
      }
      for (Request& request : later) requests_.push(std::move(request));
      // Taken off the set before the call: a look-up asked during it is asked again, so its
      // answer is never older than the question.
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const std::string& uid : uids) asked_.erase(uid);
      }
      std::vector<absl::StatusOr<cri::SandboxInfo>> answers = resolver_.resolveAll(uids);
      for (size_t i = 0; i < uids.size(); ++i) {
        on_answer_(Answer{uids[i], std::move(answers[i])});
      }
    });
    requests_.done();
  }
}

}  // namespace worker

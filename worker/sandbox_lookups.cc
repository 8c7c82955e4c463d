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

void SandboxLookups::lookUp(const std::string& pod_uid, const std::string& sandbox_uid) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!asked_.insert(pod_uid).second) return;
  }
  requests_.push(LookUp{pod_uid, sandbox_uid});
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
      std::vector<LookUp> lookups = {std::get<LookUp>(*request)};
      std::vector<Request> later;  // snapshots asked meanwhile, after the look-ups
      while (std::optional<Request> more = requests_.tryPop()) {
        if (const auto* lookup = std::get_if<LookUp>(&*more)) {
          lookups.push_back(*lookup);
        } else {
          later.push_back(*more);
        }
        requests_.done();
      }
      for (Request& request : later) requests_.push(std::move(request));
      // Taken off the set before the call: a look-up asked during it is asked again, so its
      // answer is never older than the question.
      std::vector<std::string> sandbox_uids;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const LookUp& lookup : lookups) {
          asked_.erase(lookup.pod_uid);
          sandbox_uids.push_back(lookup.sandbox_uid);
        }
      }
      std::vector<absl::StatusOr<cri::SandboxInfo>> answers = resolver_.resolveAll(sandbox_uids);
      for (size_t i = 0; i < lookups.size(); ++i) {
        on_answer_(Answer{lookups[i].pod_uid, std::move(answers[i])});
      }
    });
    requests_.done();
  }
}

}  // namespace worker

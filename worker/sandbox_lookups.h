#pragma once

#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include "absl/status/statusor.h"
#include "base/blocking_queue.h"
#include "cri/sandbox_resolver.h"

namespace worker {

// The container runtime's calls, made on a thread of their own: a runtime that does not answer
// holds this thread, up to the CRI deadline per call, never the capture worker, which goes on
// serving Pod events and tcpdump exits. One call at a time, in the order asked; a Pod's look-up
// asked again while it waits is asked once.
class SandboxLookups {
 public:
  struct Answer {
    std::string pod_uid;
    absl::StatusOr<cri::SandboxInfo> sandbox;
  };
  // Called on this thread with each answer: they must only post it somewhere.
  using OnAnswer = std::function<void(Answer)>;
  using OnSnapshot = std::function<void(absl::StatusOr<cri::SandboxSnapshot>)>;
  // A capture filter's verdict (capture::validateCaptureFilter): libpcap may resolve host names
  // while compiling, which must not hold the worker either.
  using OnFilterVerdict = std::function<void(std::string filter, absl::Status verdict)>;

  SandboxLookups(cri::SandboxResolver& resolver, OnAnswer on_answer, OnSnapshot on_snapshot,
                 OnFilterVerdict on_filter_verdict);
  ~SandboxLookups();  // stop()
  SandboxLookups(const SandboxLookups&) = delete;
  SandboxLookups& operator=(const SandboxLookups&) = delete;

  // The Pod's sandbox, by the UID its sandboxes are labelled with (a static Pod's is not its
  // mirror's: k8s::sandboxUidOf); answered for `pod_uid`.
  void lookUp(const std::string& pod_uid, const std::string& sandbox_uid);
  void snapshot();
  void checkFilter(const std::string& filter);
  // Returns once the call in flight, if any, has returned (at most one CRI deadline).
  void stop();

 private:
  struct LookUp {
    std::string pod_uid;
    std::string sandbox_uid;
  };
  struct Snapshot {};
  struct FilterCheck {
    std::string filter;
  };
  using Request = std::variant<LookUp, Snapshot, FilterCheck>;
  void run();

  cri::SandboxResolver& resolver_;
  const OnAnswer on_answer_;
  const OnSnapshot on_snapshot_;
  const OnFilterVerdict on_filter_verdict_;
  base::BlockingQueue<Request> requests_;
  std::mutex mu_;
  std::set<std::string> asked_;  // Pod UIDs queued, not yet answered
  bool snapshot_asked_ = false;
  std::thread thread_;
};

}  // namespace worker

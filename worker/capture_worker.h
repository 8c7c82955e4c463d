#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "base/clock.h"
#include "base/work_queue.h"
#include "capture/reconciler.h"
#include "k8s/pod.h"
#include "worker/sandbox_lookups.h"

namespace worker {

// The one thread that owns every capture: a k8s::PodEventHandler whose every change enqueues
// the Pod's UID, and a worker thread that reconciles UIDs one at a time (see capture::Reconciler
// for what a reconcile does). It never waits on anything but its work queue:
//  - other threads only post: informer callbacks enqueue UIDs; tcpdump exits (the launcher's
//    reaper) and the runtime's answers (SandboxLookups, its own thread) go to an inbox and wake
//    the worker, which hands them to the Reconciler before its next reconcile;
//  - a stop is a signal now and a timer on the queue for SIGKILL, finished by tcpdump's exit;
//  - every `resync_period` one unfiltered ListPodSandbox (off this thread) is checked against
//    every capture's binding, and every tracked Pod is reconciled again; only captures whose
//    sandbox changed are looked up again. Each running tcpdump is asked for its counts then
//    (SIGUSR1): they come back on its stderr, through the inbox.
// Shutdown (stop()) sends SIGTERM to every tcpdump at once, waits up to stop_grace for all
// their exits, SIGKILLs what is left and waits up to kill_wait: at most stop_grace + kill_wait
// (10 s by default), plus one CRI deadline for a runtime call in flight, whatever the number of
// captures. That fits the DaemonSet's terminationGracePeriodSeconds (60 s) with the Events'
// flush (5 s).
//
// Wiring, in this order:
//   options.tcpdump = *capture::probeTcpdump(path);   // once, at start-up
//   auto launcher = proc::NetnsLauncher::create({});
//   worker::CaptureWorker worker(options, resolver, pod_lister, event_sink, **launcher);
//   register `worker` as the informer's PodEventHandler, wait for the cache to sync,
//   worker.start();
//   on SIGTERM: stop the informer, worker.stop(), then flush the Events.
class CaptureWorker : public k8s::PodEventHandler {
 public:
  CaptureWorker(capture::CaptureOptions options, cri::SandboxResolver& resolver,
                k8s::PodLister& pods, k8s::EventSink& events, proc::ProcessLauncher& launcher,
                const base::Clock& clock = defaultClock());
  ~CaptureWorker() override;  // stop()

  // Takes back the Completed and bounded captures an earlier run saved, deletes every other
  // capture file in the directory and takes the Pods of the cache that want a capture
  // (capture::Reconciler::startFresh), queues those and starts the worker. Every Pod of
  // the cache, those included, is queued anyway by the informer's onAdd calls for its first
  // list, whether they come before start() or after. Fails when the capture directory cannot be
  // listed.
  absl::Status start();
  // Stops every tcpdump (see above; the files stay, the next start deletes them) and the worker.
  // Idempotent.
  void stop();

  void onAdd(const k8s::Pod& pod) override;
  void onUpdate(const k8s::Pod& old_pod, const k8s::Pod& new_pod) override;
  void onDelete(const k8s::Pod& pod) override;

  // Snapshots, as of the last reconcile; safe from any thread.
  std::vector<capture::CaptureStatus> captures() const;
  capture::CaptureStats stats() const;

  // When the worker last went round its loop: after each reconcile, and at least once per
  // resync period while idle. nullopt before start(). For a liveness probe: a worker silent for
  // much longer than the resync period is stuck.
  std::optional<std::chrono::steady_clock::time_point> lastWorkerPass() const;

 private:
  // What other threads hand the worker.
  struct Inbox {
    std::vector<proc::ProcessOutput> outputs;  // before `exits`: a process's output comes first
    std::vector<proc::ProcessExit> exits;
    std::vector<SandboxLookups::Answer> answers;
    std::optional<absl::StatusOr<cri::SandboxSnapshot>> snapshot;
    std::vector<std::pair<std::string, absl::Status>> filter_verdicts;
  };

  static const base::Clock& defaultClock();
  void run();
  // Hands what the inbox holds to the Reconciler and queues the Pods it concerns.
  void drainInbox();
  void reconcile(const std::string& uid);
  // SIGTERM to every tcpdump, then SIGKILL, each followed by a wait for their exits.
  void shutDownCaptures();
  bool waitForExits(base::Duration budget);
  void post(const std::function<void(Inbox&)>& put);
  void publish();

  const base::Duration resync_period_;
  const base::Duration stop_grace_;
  const base::Duration kill_wait_;
  proc::ProcessLauncher& launcher_;
  capture::Reconciler reconciler_;  // touched by the worker only (and by start() before it runs)
  base::WorkQueue queue_;
  std::mutex inbox_mu_;
  Inbox inbox_;
  SandboxLookups lookups_;  // after what its callbacks post to

  mutable std::mutex snapshot_mu_;
  std::vector<capture::CaptureStatus> captures_;
  capture::CaptureStats stats_;

  std::atomic<std::chrono::steady_clock::time_point> last_pass_{
      std::chrono::steady_clock::time_point::min()};  // min(): not started
  std::atomic<bool> stopping_{false};

  std::mutex lifecycle_mu_;
  std::thread worker_;
};

}  // namespace worker

#pragma once

#include <atomic>
#include <chrono>
#include <map>
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

namespace worker {

// The one thread that owns every capture: a k8s::PodEventHandler whose every change enqueues the
// Pod's UID, and a worker thread that reconciles UIDs one at a time (see capture::Reconciler for
// what a reconcile does). Other
// threads only post: informer callbacks enqueue UIDs, tcpdump exits arrive from the launcher's
// reaper. A resync every `resync_period` re-enqueues every Pod that has a capture, so a
// sandbox the kubelet replaced is noticed without any API change.
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

  // Deletes every capture file in the directory and takes the Pods of the cache that want a
  // capture (capture::Reconciler::startFresh), queues those and starts the worker. Every Pod of the
  // cache, those included, is queued anyway by the informer's onAdd calls for its first list,
  // whether they come before start() or after. Fails when the capture directory cannot be
  // listed.
  absl::Status start();
  // Stops every tcpdump cleanly (the files stay; the next start deletes them) and the worker.
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
  static const base::Clock& defaultClock();
  void run();
  void postExit(proc::ProcessExit exit);
  std::vector<proc::ProcessExit> takeExits(const std::string& pod_uid);
  void publish();

  const base::Duration resync_period_;
  proc::ProcessLauncher& launcher_;
  capture::Reconciler reconciler_;  // touched by the worker only (and by start() before it runs)
  base::WorkQueue queue_;

  std::mutex exits_mu_;
  std::map<std::string, std::vector<proc::ProcessExit>> exits_;  // by Pod UID

  mutable std::mutex snapshot_mu_;
  std::vector<capture::CaptureStatus> captures_;
  capture::CaptureStats stats_;

  std::atomic<std::chrono::steady_clock::time_point> last_pass_{
      std::chrono::steady_clock::time_point::min()};  // min(): not started

  std::mutex lifecycle_mu_;
  std::thread worker_;
};

}  // namespace worker

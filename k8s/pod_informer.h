#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "base/backoff.h"
#include "base/blocking_queue.h"
#include "k8s/http_client.h"
#include "k8s/kube_config.h"
#include "k8s/pod.h"
#include "k8s/pod_cache.h"
#include "k8s/pod_delta_queue.h"
#include "k8s/pod_json.h"

namespace k8s {

struct PodInformerOptions {
  std::string node_name;  // required: only the Pods with spec.nodeName == node_name
  int page_size = 500;    // list `limit`
  // Each watch asks for timeoutSeconds drawn from [min, 2*min), like client-go's reflector,
  // so that the agents of a cluster do not all reconnect at once.
  std::chrono::seconds min_watch_timeout{300};
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30'000};
  PodParseOptions parse;  // e.g. keep only the annotations the controller reads
  HttpClient::Options http;
};

// Counters for /metrics. Monotonic, except last_sync and the queue's size.
struct PodInformerStats {
  uint64_t lists = 0;             // complete lists, the first one included
  uint64_t relists = 0;           // lists after the first: 410 Gone, or a stream we could not trust
  uint64_t watch_reconnects = 0;  // watches opened after the first
  // Every parsed line of a watch: ADDED / MODIFIED / DELETED / BOOKMARK, and ERROR too.
  uint64_t events_received = 0;
  uint64_t changes_delivered = 0;                                  // handler calls
  std::optional<std::chrono::system_clock::time_point> last_sync;  // last complete list
  // The queue between watcher and dispatcher (PodDeltaQueue).
  uint64_t changes_collapsed = 0;  // observations merged into one still queued
  size_t queued_changes = 0;       // waiting for the dispatcher now: one per Pod, or one relist
  size_t queue_high_water = 0;     // the most entries it ever held: at most Pods + 1
};

// Lists and watches the Pods of one node and keeps them in a cache by UID, like client-go's
// informer. Two threads: the watcher (HTTP, parsing) only queues what it saw; the dispatcher
// applies it to the cache and calls the handler, so a slow handler never stalls the stream. The
// queue between them (PodDeltaQueue) collapses what is still queued per Pod: a handler that
// falls behind costs one entry per Pod, not one per change.
//
//   k8s::PodInformerOptions options;
//   options.node_name = node;
//   k8s::PodInformer informer(config, options, &handler);
//   informer.start();
//   if (!informer.waitForSync(std::chrono::seconds(30))) { ... }
//   std::optional<k8s::Pod> pod = informer.get(uid);
//   informer.stop();  // prompt, also in the middle of an idle watch
//
// Each change to the cache reaches the handler once and in the API server's order, through
// dropped connections, 410 Gone (a relist delivers only the differences) and API server
// restarts. Changes that pile up while the handler is busy collapse: it then sees each Pod's
// latest state, once, in the order of the Pod's first change, with onUpdate's old object the
// one it saw before (the cache's); a Pod added and deleted in the meantime it never sees.
class PodInformer : public PodLister {
 public:
  // `handler` may be null; it must outlive the informer.
  PodInformer(const ClusterConfig& config, PodInformerOptions options, PodEventHandler* handler);
  ~PodInformer() override;
  PodInformer(const PodInformer&) = delete;
  PodInformer& operator=(const PodInformer&) = delete;

  void start();
  // Idempotent; returns once both threads have exited. Changes not yet delivered are dropped.
  void stop();

  // The first list has reached the cache and the handler.
  bool hasSynced() const { return synced_.load(); }
  bool waitForSync(std::chrono::steady_clock::duration timeout) const;

  std::optional<Pod> get(std::string_view uid) const override { return cache_.get(uid); }
  std::vector<Pod> list() const override { return cache_.list(); }
  PodInformerStats stats() const;

 private:
  // How one watch ended, which decides what the watcher does next.
  enum class WatchEnd { kTimedOut, kBroken, kExpired, kUntrusted, kStopped };
  struct ListResult {
    std::vector<Pod> pods;
    std::string resource_version;
  };

  // What the watcher carries from one list or watch to the next.
  struct WatcherState {
    base::Backoff backoff;
    bool need_list = true;
    bool first_watch = true;
    std::string resource_version = {};
  };

  void runWatcher();
  void listOrWatch(WatcherState& state);
  void runDispatcher();
  void apply(PodDeltaQueue::Delta delta);
  // "0": from the API server's watch cache, if it has one; empty: a consistent read.
  absl::StatusOr<ListResult> listAll(std::string_view resource_version);
  WatchEnd watchFrom(std::string& resource_version);
  void deliver(const PodChange& change);
  void pause(std::chrono::milliseconds delay);
  std::string selector() const;

  const PodInformerOptions options_;
  PodEventHandler* const handler_;
  HttpClient http_;
  PodCache cache_;
  Cancellation cancel_;

  PodDeltaQueue queue_;  // closed at stop()

  mutable std::mutex sync_mutex_;
  mutable std::condition_variable sync_changed_;
  std::atomic<bool> synced_{false};

  std::atomic<uint64_t> lists_{0};
  std::atomic<uint64_t> watch_reconnects_{0};
  std::atomic<uint64_t> events_received_{0};
  std::atomic<uint64_t> changes_delivered_{0};
  std::atomic<int64_t> last_sync_ns_{0};

  std::thread watcher_;
  std::thread dispatcher_;
};

}  // namespace k8s

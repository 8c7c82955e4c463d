#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "base/blocking_queue.h"
#include "k8s/event_sink.h"
#include "k8s/http_client.h"
#include "k8s/kube_config.h"

namespace k8s {

struct EventRecorderOptions {
  std::string component = "capture-controller";  // source.component, reportingComponent
  std::string host;                              // source.host: the node name
  std::string reporting_instance;                // reportingInstance; empty: `host`
  size_t queue_capacity = 1024;                  // emit() drops beyond this, never waits
  int max_attempts = 4;                          // per Event, on 5xx, 429 and connection errors
  std::chrono::milliseconds initial_retry_delay{200};
  std::chrono::milliseconds max_retry_delay{5'000};
  size_t aggregation_capacity = 4096;  // recent Events remembered for aggregation (LRU)
  HttpClient::Options http;
};

struct EventRecorderStats {
  uint64_t created = 0;     // POSTs that succeeded
  uint64_t aggregated = 0;  // PATCHes that succeeded (a repeat of a recent Event)
  uint64_t dropped_queue_full = 0;
  uint64_t failed = 0;  // given up after retries, or refused by the server
};

// Posts core/v1 Events about Pods from a background thread, like client-go's EventRecorder:
// emit() only queues (bounded, never blocks on the network), and a repeat of a recent Event
// (same object, type, reason and message) PATCHes its count and lastTimestamp instead of
// creating another one; a PATCH answered 404 (the Event expired) creates it anew.
//
//   k8s::EventRecorderOptions options;
//   options.host = node_name;
//   k8s::EventRecorder events(config, options);
//   events.emit(k8s::referenceTo(pod), k8s::EventType::kNormal, "CaptureStarted", "...");
//   events.flush(std::chrono::seconds(5));  // at shutdown
class EventRecorder : public EventSink {
 public:
  EventRecorder(const ClusterConfig& config, EventRecorderOptions options);
  ~EventRecorder() override;  // stop()
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  void emit(const ObjectReference& object, EventType type, std::string_view reason,
            std::string_view message) override;

  // Waits until every queued Event was sent or given up; false when `timeout` came first.
  bool flush(std::chrono::steady_clock::duration timeout);
  // Prompt: aborts the request in flight; Events still queued are dropped (and logged).
  void stop();

  EventRecorderStats stats() const;

 private:
  struct Pending {
    ObjectReference object;
    EventType type;
    std::string reason;
    std::string message;
    std::chrono::system_clock::time_point time;
  };
  // What was posted for one (object, type, reason, message), to aggregate its repeats.
  struct Posted {
    std::string name;
    int count = 0;
    std::string first_timestamp;
  };
  using AggregationKey = std::string;
  enum class Outcome { kDone, kNotFound, kGiveUp };

  void run();
  void record(const Pending& event);
  Outcome send(std::string_view method, const std::string& path, const std::string& body,
               std::string_view content_type);
  std::string nextEventName(const std::string& object_name);
  void remember(const AggregationKey& key, Posted posted);

  const EventRecorderOptions options_;
  HttpClient http_;
  Cancellation cancel_;

  base::BlockingQueue<Pending> queue_;

  // Touched only by the worker thread.
  std::list<AggregationKey> recent_;  // most recent first
  std::map<AggregationKey, std::pair<Posted, std::list<AggregationKey>::iterator>> posted_;
  int64_t last_name_nanos_ = 0;

  std::atomic<uint64_t> created_{0};
  std::atomic<uint64_t> aggregated_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failed_{0};

  std::thread worker_;
};

}  // namespace k8s

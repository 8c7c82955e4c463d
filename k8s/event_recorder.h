#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "base/blocking_queue.h"
#include "base/clock.h"
#include "base/hashed_lru.h"
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

  // client-go's EventCorrelator, with its defaults.
  // Similar Events (one object, type and reason; other messages): up to `aggregation_threshold`
  // distinct messages within `aggregation_window` are posted as themselves, later ones are
  // counted on one "(combined from similar events): ..." Event. 0: no aggregation.
  size_t aggregation_threshold = 10;
  std::chrono::milliseconds aggregation_window = std::chrono::minutes(10);
  // Per involved object, a token bucket: `spam_burst` Events, then one more per
  // `spam_refill_interval`; an Event without a token is dropped. spam_burst 0: no limit.
  size_t spam_burst = 25;
  std::chrono::milliseconds spam_refill_interval = std::chrono::minutes(5);
  // LRU capacities of the three caches (see EventRecorder for what an entry costs).
  size_t repeat_cache_capacity = 4096;   // posted Events, to PATCH their exact repeats
  size_t similar_cache_capacity = 4096;  // aggregation records, per object + type + reason
  size_t spam_cache_capacity = 4096;     // token buckets, per object
  // The time of each Event for the rate limit and the aggregation window (its timestamps are
  // the system clock's). Null: the steady clock. Tests pass a fake one and never sleep.
  const base::Clock* clock = nullptr;

  HttpClient::Options http;
};

struct EventRecorderStats {
  uint64_t created = 0;     // POSTs that succeeded
  uint64_t aggregated = 0;  // PATCHes that succeeded (a repeat, or one more similar Event)
  uint64_t dropped_queue_full = 0;
  uint64_t failed = 0;        // given up after retries, or refused by the server
  uint64_t dropped_spam = 0;  // over the per-object rate limit (the token bucket)
};

// Entries in the recorder's caches now; each is at most its capacity in EventRecorderOptions.
struct EventRecorderCacheSizes {
  size_t repeats = 0;
  size_t similar = 0;
  size_t spam_buckets = 0;
  size_t allocated_bytes = 0;  // the three caches' tables and entries, as allocated now
};

// Posts core/v1 Events about Pods from a background thread, like client-go's EventRecorder:
// emit() only queues (bounded, never blocks on the network); the recorder's thread then, as
// client-go's EventCorrelator does,
//  1. aggregates similar Events: after `aggregation_threshold` distinct messages for one
//     object, type and reason within `aggregation_window`, further ones become one Event,
//     "(combined from similar events): <latest message>", counted by PATCH;
//  2. finds exact repeats (same object, type, reason and message) of an Event it posted, to
//     PATCH its count and lastTimestamp instead of creating another one (a PATCH answered 404,
//     the Event expired, creates it anew);
//  3. drops an Event, POST or PATCH, that finds no token in its object's bucket (`spam_burst`,
//     then one per `spam_refill_interval`), and counts it in stats().dropped_spam.
//
// Memory is bounded whatever the churn of Pods. Each cache is a base::HashedLru keyed by a 64-bit
// hash of its key text (never the text itself), 8 bytes of table per entry besides the entry:
//  - repeats (repeat_cache_capacity, 4096): 40-byte entries (the Event's name as the nanoseconds
//    of its suffix, its first timestamp in seconds, its count): 48 bytes each, 192 KiB in all;
//  - similar (similar_cache_capacity, 4096): 40-byte entries (last seen, the 32-bit hash of the
//    first message and the number of distinct ones; from the 2nd distinct message to the
//    threshold, 48 bytes of heap for the other hashes): 48 bytes each, 96 while between 2 and
//    `aggregation_threshold` messages, 384 KiB at most; an entry idle for longer than
//    `aggregation_window` is dropped;
//  - spam buckets (spam_cache_capacity, 4096): 24-byte entries (the time the bucket is full
//    again, GCRA): 32 bytes each, 128 KiB; an entry whose bucket would be full again (idle for
//    at most spam_burst * spam_refill_interval, 125 min) is dropped.
// At most about 700 KiB with every cache full (about 510 KiB when few objects have several
// similar messages at once); idle entries are dropped as the next Event is handled. A collision
// of 64-bit keys (about one chance in 10^12 with a full cache) costs one wrong PATCH or token; of
// two of 10 similar messages' 32-bit hashes (one in 10^8), one more message posted as itself.
//
// Unlike client-go, whose 10th distinct similar message already makes the combined Event, the
// first `aggregation_threshold` are all posted as themselves.
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
  // As of the last Event handled.
  EventRecorderCacheSizes cacheSizes() const;

 private:
  struct Pending {
    ObjectReference object;
    EventType type;
    std::string reason;
    std::string message;
    std::chrono::system_clock::time_point time;  // its timestamps
    base::TimePoint seen;                        // options.clock's: rate limit and window
  };
  // What a PATCH of a posted Event needs.
  struct Posted {
    int64_t name_nanos = 0;     // the Event is named "<object name>.<these, in hex>"
    int64_t first_seconds = 0;  // firstTimestamp
    int32_t count = 0;
  };
  // Similar Events (one object, type, reason) seen within the aggregation window.
  struct Similar {
    base::TimePoint last_seen;
    uint32_t first_message = 0;  // the 32-bit hash of the first message
    uint32_t distinct = 0;       // distinct messages, up to the threshold
    // From the 2nd distinct message until the threshold: the hashes of the others (room for
    // threshold - 2). Freed at the threshold, when every similar Event is combined anyway.
    std::unique_ptr<uint32_t[]> others;
  };
  // A token bucket as one time (GCRA): when it is full again. Tokens: (this - now) / refill
  // short of the burst.
  using FullAt = base::TimePoint;
  enum class Outcome { kDone, kNotFound, kGiveUp };

  void run();
  void record(const Pending& event);
  // Step 1: whether `event` is to be combined with its similar ones.
  bool combineWithSimilar(uint64_t similar_key, std::string_view message, base::TimePoint now);
  // Step 3: takes a token from the object's bucket; false when there is none.
  bool takeToken(uint64_t object_key, base::TimePoint now);
  void logSpamDrop(const Pending& event, base::TimePoint now);
  Outcome send(std::string_view method, const std::string& path, const std::string& body,
               std::string_view content_type);
  int64_t nextEventNanos();
  void publishCacheSizes();

  const EventRecorderOptions options_;
  const base::Clock* const clock_;
  HttpClient http_;
  Cancellation cancel_;

  base::BlockingQueue<Pending> queue_;

  // Touched only by the worker thread.
  base::HashedLru<Posted> repeats_;
  base::HashedLru<Similar> similar_;
  base::HashedLru<FullAt> spam_buckets_;
  base::TimePoint last_now_{};
  int64_t last_name_nanos_ = 0;
  base::TimePoint last_spam_log_{};
  uint64_t spam_unlogged_ = 0;

  std::atomic<uint64_t> created_{0};
  std::atomic<uint64_t> aggregated_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dropped_spam_{0};
  std::atomic<size_t> repeat_entries_{0};
  std::atomic<size_t> similar_entries_{0};
  std::atomic<size_t> spam_entries_{0};
  std::atomic<size_t> cache_bytes_{0};

  std::thread worker_;
};

}  // namespace k8s

#include "k8s/event_recorder.h"

#include <glog/logging.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/backoff.h"
#include "base/thread_step.h"

namespace k8s {
namespace {

// Event timestamps are metav1.Time: RFC 3339 in UTC, whole seconds.
std::string rfc3339(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[sizeof("2006-01-02T15:04:05Z")];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

const base::SteadyClock kSteadyClock;

const char* toString(EventType type) { return type == EventType::kWarning ? "Warning" : "Normal"; }

// A message carries bytes from elsewhere (tcpdump's stderr, an interface name): what is not
// UTF-8 becomes U+FFFD, where a plain dump() would throw.
std::string serialize(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string eventsPath(const std::string& namespace_) {
  return absl::StrCat("/api/v1/namespaces/", namespace_, "/events");
}

constexpr char kCombinedPrefix[] = "(combined from similar events): ";

// 64-bit keys of the caches: FNV-1a over each part and its length (so that no two different
// lists of parts give the same bytes), then splitmix64's finalizer for well mixed bits.
class KeyHash {
 public:
  KeyHash& add(std::string_view part) {
    for (unsigned char c : part) byte(c);
    for (size_t n = part.size(), i = 0; i < sizeof(n); ++i, n >>= 8) byte(n & 0xff);
    return *this;
  }
  uint64_t value() const {
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  void byte(unsigned char c) {
    state_ ^= c;
    state_ *= 0x100000001b3ull;
  }
  uint64_t state_ = 0xcbf29ce484222325ull;
};

}  // namespace

EventRecorder::EventRecorder(const ClusterConfig& config, EventRecorderOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &kSteadyClock),
      http_(config, options_.http),
      queue_(options_.queue_capacity),
      repeats_(options_.repeat_cache_capacity),
      similar_(options_.similar_cache_capacity),
      spam_buckets_(options_.spam_cache_capacity) {
  // The sizes the header's bound is stated with (x86-64).
  static_assert(base::HashedLru<Posted>::entryBytes() == 40);
  static_assert(base::HashedLru<Similar>::entryBytes() == 40);
  static_assert(base::HashedLru<FullAt>::entryBytes() == 24);
  worker_ = std::thread([this] { run(); });
}

EventRecorder::~EventRecorder() { stop(); }

void EventRecorder::emit(const ObjectReference& object, EventType type, std::string_view reason,
                         std::string_view message) {
  if (!queue_.push(Pending{object, type, std::string(reason), std::string(message),
                           std::chrono::system_clock::now(), clock_->now()})) {
    dropped_++;
    LOG_EVERY_N(WARNING, 100) << "Event queue full (or stopped): dropped " << reason << " for "
                              << object.namespace_ << "/" << object.name << " (" << google::COUNTER
                              << " dropped so far)";
  }
}

bool EventRecorder::flush(std::chrono::steady_clock::duration timeout) {
  return queue_.waitDrained(timeout);
}

void EventRecorder::stop() {
  if (queue_.closed() && !worker_.joinable()) return;
  const size_t abandoned = queue_.close();
  cancel_.cancel();
  if (worker_.joinable()) worker_.join();
  if (abandoned > 0) LOG(WARNING) << "stopping: " << abandoned << " Events not sent";
}

EventRecorderStats EventRecorder::stats() const {
  return EventRecorderStats{created_.load(), aggregated_.load(), dropped_.load(), failed_.load(),
                            dropped_spam_.load()};
}

EventRecorderCacheSizes EventRecorder::cacheSizes() const {
  return EventRecorderCacheSizes{repeat_entries_.load(), similar_entries_.load(),
                                 spam_entries_.load(), cache_bytes_.load()};
}

void EventRecorder::run() {
  while (std::optional<Pending> event = queue_.pop()) {
    if (!base::runThreadStep("Event recorder", [&] { record(*event); })) failed_++;
    publishCacheSizes();
    queue_.done();
  }
}

void EventRecorder::publishCacheSizes() {
  repeat_entries_.store(repeats_.size());
  similar_entries_.store(similar_.size());
  spam_entries_.store(spam_buckets_.size());
  cache_bytes_.store(repeats_.allocatedBytes() + similar_.allocatedBytes() +
                     spam_buckets_.allocatedBytes());
}

void EventRecorder::record(const Pending& event) {
  // Emitters on several threads may queue their times slightly out of order.
  const base::TimePoint now = std::max(event.seen, last_now_);
  last_now_ = now;
  // Entries idle for long enough to be no different from none. Each cache is in order of last
  // use, so the expired ones are its oldest.
  similar_.evictOldestWhile([&](const Similar& similar) {
    return now - similar.last_seen > options_.aggregation_window;
  });
  spam_buckets_.evictOldestWhile([&](const FullAt& full_at) { return full_at <= now; });

  const std::string namespace_ =
      event.object.namespace_.empty() ? "default" : event.object.namespace_;
  KeyHash object_hash;
  object_hash.add(event.object.kind)
      .add(event.object.api_version)
      .add(namespace_)
      .add(event.object.name)
      .add(event.object.uid);
  const uint64_t object_key = KeyHash(object_hash).add("object").value();
  KeyHash similar_hash = object_hash.add(toString(event.type)).add(event.reason);
  const uint64_t similar_key = KeyHash(similar_hash).add("similar").value();
  const uint64_t exact_key = similar_hash.add(event.message).add("exact").value();

  // 1. Similar Events, combined past the threshold. The combined Event is remembered by the
  // similar key: later ones PATCH it, each with its own message.
  const bool combined = combineWithSimilar(similar_key, event.message, now);
  const uint64_t repeat_key = combined ? similar_key : exact_key;
  const std::string message =
      combined ? absl::StrCat(kCombinedPrefix, event.message) : event.message;
  // 2. An exact repeat of a posted Event (or one more similar Event) is a PATCH of it.
  const Posted* known = repeats_.peek(repeat_key);
  // 3. The object's rate limit, for POSTs and PATCHes alike.
  if (!takeToken(object_key, now)) {
    dropped_spam_++;
    logSpamDrop(event, now);
    return;
  }

  const std::string timestamp = rfc3339(event.time);
  Posted posted{0, std::chrono::system_clock::to_time_t(event.time), 1};
  if (known != nullptr) {
    posted = *known;
    posted.count++;
    nlohmann::json patch = {{"count", posted.count}, {"lastTimestamp", timestamp}};
    if (combined) patch["message"] = message;
    const std::string name = absl::StrFormat("%s.%x", event.object.name, posted.name_nanos);
    const Outcome outcome = send("PATCH", absl::StrCat(eventsPath(namespace_), "/", name),
                                 serialize(patch), "application/strategic-merge-patch+json");
    if (outcome == Outcome::kDone) {
      aggregated_++;
      repeats_.put(repeat_key, posted);
      return;
    }
    if (outcome == Outcome::kGiveUp) {
      failed_++;
      return;
    }
    // 404: the Event expired (the API server keeps them an hour); create it again, keeping
    // its count and first time like client-go does.
  }
  posted.name_nanos = nextEventNanos();
  const nlohmann::json body = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"name", absl::StrFormat("%s.%x", event.object.name, posted.name_nanos)},
        {"namespace", namespace_}}},
      {"involvedObject",
       {{"apiVersion", event.object.api_version},
        {"kind", event.object.kind},
        {"namespace", namespace_},
        {"name", event.object.name},
        {"uid", event.object.uid}}},
      {"reason", event.reason},
      {"message", message},
      {"type", toString(event.type)},
      {"source", {{"component", options_.component}, {"host", options_.host}}},
      {"firstTimestamp", rfc3339(std::chrono::system_clock::from_time_t(posted.first_seconds))},
      {"lastTimestamp", timestamp},
      {"count", posted.count},
      {"reportingComponent", options_.component},
      {"reportingInstance",
       options_.reporting_instance.empty() ? options_.host : options_.reporting_instance},
  };
  const Outcome outcome = send("POST", eventsPath(namespace_), serialize(body), "application/json");
  if (outcome == Outcome::kDone) {
    created_++;
    repeats_.put(repeat_key, posted);
  } else {
    failed_++;
  }
}

bool EventRecorder::combineWithSimilar(uint64_t similar_key, std::string_view message,
                                       base::TimePoint now) {
  const size_t threshold = options_.aggregation_threshold;
  if (threshold == 0) return false;
  Similar* similar = similar_.get(similar_key);
  if (similar == nullptr) similar = &similar_.put(similar_key, Similar{now, 0, 0, nullptr});
  similar->last_seen = now;
  // Past the threshold every similar Event is combined, a message seen before too (client-go).
  if (similar->distinct >= threshold) return true;
  const auto hash = static_cast<uint32_t>(KeyHash().add(message).value());
  if (similar->distinct == 0) {
    similar->first_message = hash;
  } else {
    if (hash == similar->first_message) return false;
    uint32_t* const others = similar->others.get();
    if (others != nullptr &&
        std::find(others, others + similar->distinct - 1, hash) != others + similar->distinct - 1) {
      return false;
    }
    if (similar->distinct + 1 >= threshold) {
      similar->others.reset();  // no longer needed: from now on all are combined
    } else {
      // Room for the 2nd to the (threshold - 1)th: the threshold-th frees it.
      if (others == nullptr) similar->others = std::make_unique<uint32_t[]>(threshold - 2);
      similar->others[similar->distinct - 1] = hash;
    }
  }
  similar->distinct++;
  return false;
}

bool EventRecorder::takeToken(uint64_t object_key, base::TimePoint now) {
  if (options_.spam_burst == 0) return true;
  const auto interval = std::chrono::duration_cast<base::TimePoint::duration>(
      std::max(options_.spam_refill_interval, std::chrono::milliseconds(1)));
  // Touched on every Event of the object, dropped ones too: a spamming object's bucket stays.
  FullAt* full_at = spam_buckets_.get(object_key);
  const base::TimePoint from = full_at != nullptr ? std::max(*full_at, now) : now;
  // A token is left while the bucket is full again within (burst - 1) refills.
  const auto burst = static_cast<base::TimePoint::duration::rep>(options_.spam_burst);
  if (from - now > (burst - 1) * interval) return false;
  if (full_at != nullptr) {
    *full_at = from + interval;
  } else {
    spam_buckets_.put(object_key, from + interval);
  }
  return true;
}

void EventRecorder::logSpamDrop(const Pending& event, base::TimePoint now) {
  // At most one line a minute, with the count since the last one.
  ++spam_unlogged_;
  if (last_spam_log_ != base::TimePoint{} && now - last_spam_log_ < std::chrono::minutes(1)) {
    return;
  }
  LOG(WARNING)
      << "Events over the rate limit of " << options_.spam_burst << ", then one per "
      << std::chrono::duration_cast<std::chrono::seconds>(options_.spam_refill_interval).count()
      << " s, per object: dropped " << spam_unlogged_ << " (the last: " << event.reason << " for "
      << event.object.kind << " " << event.object.namespace_ << "/" << event.object.name << "); "
      << dropped_spam_.load() << " in all";
  last_spam_log_ = now;
  spam_unlogged_ = 0;
}

EventRecorder::Outcome EventRecorder::send(std::string_view method, const std::string& path,
                                           const std::string& body, std::string_view content_type) {
  base::Backoff backoff(options_.initial_retry_delay, options_.max_retry_delay);
  for (int attempt = 1;; ++attempt) {
    auto response = http_.request(method, path, body, content_type, &cancel_);
    if (cancel_.cancelled()) return Outcome::kGiveUp;
    absl::Status error = response.ok() ? apiError(*response) : response.status();
    if (error.ok()) return Outcome::kDone;
    if (response.ok() && response->status == 404 && method == "PATCH") return Outcome::kNotFound;
    const bool retryable = !response.ok() || response->status >= 500 || response->status == 429;
    if (!retryable || attempt >= options_.max_attempts) {
      LOG(WARNING) << "Event " << method << " " << path << " failed"
                   << (retryable ? absl::StrCat(" after ", attempt, " attempts") : "") << ": "
                   << error;
      return Outcome::kGiveUp;
    }
    if (queue_.waitClosed(backoff.next())) return Outcome::kGiveUp;
  }
}

int64_t EventRecorder::nextEventNanos() {
  // client-go's naming, made strictly increasing so that two Events of one object within the
  // clock's resolution still get distinct names.
  int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  if (nanos <= last_name_nanos_) nanos = last_name_nanos_ + 1;
  last_name_nanos_ = nanos;
  return nanos;
}

}  // namespace k8s

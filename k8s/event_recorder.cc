#include "k8s/event_recorder.h"

#include <glog/logging.h>

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

const char* toString(EventType type) { return type == EventType::kWarning ? "Warning" : "Normal"; }

// A message carries bytes from elsewhere (tcpdump's stderr, an interface name): what is not
// UTF-8 becomes U+FFFD, where a plain dump() would throw.
std::string serialize(const nlohmann::json& body) {
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string eventsPath(const std::string& namespace_) {
  return absl::StrCat("/api/v1/namespaces/", namespace_, "/events");
}

}  // namespace

EventRecorder::EventRecorder(const ClusterConfig& config, EventRecorderOptions options)
    : options_(std::move(options)), http_(config, options_.http), queue_(options_.queue_capacity) {
  worker_ = std::thread([this] { run(); });
}

EventRecorder::~EventRecorder() { stop(); }

void EventRecorder::emit(const ObjectReference& object, EventType type, std::string_view reason,
                         std::string_view message) {
  if (!queue_.push(Pending{object, type, std::string(reason), std::string(message),
                           std::chrono::system_clock::now()})) {
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
  return EventRecorderStats{created_.load(), aggregated_.load(), dropped_.load(), failed_.load()};
}

void EventRecorder::run() {
  while (std::optional<Pending> event = queue_.pop()) {
    if (!base::runThreadStep("Event recorder", [&] { record(*event); })) failed_++;
    queue_.done();
  }
}

void EventRecorder::record(const Pending& event) {
  const std::string namespace_ =
      event.object.namespace_.empty() ? "default" : event.object.namespace_;
  const AggregationKey key = absl::StrCat(
      event.object.kind, "\x1f", namespace_, "\x1f", event.object.name, "\x1f", event.object.uid,
      "\x1f", toString(event.type), "\x1f", event.reason, "\x1f", event.message);
  const std::string now = rfc3339(event.time);

  Posted posted{"", 1, now};
  if (auto it = posted_.find(key); it != posted_.end()) {
    posted = it->second.first;
    posted.count++;
    const nlohmann::json patch = {{"count", posted.count}, {"lastTimestamp", now}};
    const Outcome outcome = send("PATCH", absl::StrCat(eventsPath(namespace_), "/", posted.name),
                                 serialize(patch), "application/strategic-merge-patch+json");
    if (outcome == Outcome::kDone) {
      aggregated_++;
      remember(key, posted);
      return;
    }
    if (outcome == Outcome::kGiveUp) {
      failed_++;
      return;
    }
    // 404: the Event expired (the API server keeps them an hour); create it again, keeping
    // its count and first time like client-go does.
  }
  posted.name = nextEventName(event.object.name);
  const nlohmann::json body = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", posted.name}, {"namespace", namespace_}}},
      {"involvedObject",
       {{"apiVersion", event.object.api_version},
        {"kind", event.object.kind},
        {"namespace", namespace_},
        {"name", event.object.name},
        {"uid", event.object.uid}}},
      {"reason", event.reason},
      {"message", event.message},
      {"type", toString(event.type)},
      {"source", {{"component", options_.component}, {"host", options_.host}}},
      {"firstTimestamp", posted.first_timestamp},
      {"lastTimestamp", now},
      {"count", posted.count},
      {"reportingComponent", options_.component},
      {"reportingInstance",
       options_.reporting_instance.empty() ? options_.host : options_.reporting_instance},
  };
  const Outcome outcome = send("POST", eventsPath(namespace_), serialize(body), "application/json");
  if (outcome == Outcome::kDone) {
    created_++;
    remember(key, posted);
  } else {
    failed_++;
  }
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

std::string EventRecorder::nextEventName(const std::string& object_name) {
  // client-go's naming, made strictly increasing so that two Events of one object within the
  // clock's resolution still get distinct names.
  int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  if (nanos <= last_name_nanos_) nanos = last_name_nanos_ + 1;
  last_name_nanos_ = nanos;
  return absl::StrFormat("%s.%x", object_name, nanos);
}

void EventRecorder::remember(const AggregationKey& key, Posted posted) {
  if (auto it = posted_.find(key); it != posted_.end()) {
    recent_.erase(it->second.second);
    posted_.erase(it);
  }
  recent_.push_front(key);
  posted_.emplace(key, std::make_pair(std::move(posted), recent_.begin()));
  while (posted_.size() > options_.aggregation_capacity) {
    posted_.erase(recent_.back());
    recent_.pop_back();
  }
}

}  // namespace k8s

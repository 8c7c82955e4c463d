#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "k8s/pod.h"
#include "k8s/pod_json.h"

namespace k8s {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

const char* toString(WatchEventType type);

// One line of a Pod watch stream (`{"type":...,"object":...}`), reduced to what the informer
// needs.
struct WatchEvent {
  WatchEventType type = WatchEventType::kError;
  Pod pod;                       // kAdded, kModified, kDeleted
  std::string resource_version;  // the Pod's, or the bookmark's
  // kError: the core/v1 Status the server sent (410 Expired: the version was compacted).
  int error_code = 0;
  std::string error_reason;
  std::string error_message;

  bool operator==(const WatchEvent&) const = default;
};

// Parses one event. An event whose JSON is malformed, whose type is unknown, or whose object
// is not a Pod (nor a Status for ERROR) is an error: the caller cannot trust its cache after it.
absl::StatusOr<WatchEvent> parseWatchEvent(std::string_view line,
                                           const PodParseOptions& options = {});

// Turns the bytes of a watch response, as they arrive, into events. The API server writes one
// JSON document per line; HTTP chunks and socket reads cut those lines anywhere, so an event may
// span reads and one read may hold many. Pure: no I/O, no threads.
class WatchStreamParser {
 public:
  // Return false to stop: the rest of the bytes already fed is dropped.
  using EventCallback = std::function<bool(absl::StatusOr<WatchEvent>)>;

  explicit WatchStreamParser(PodParseOptions options = {}) : options_(std::move(options)) {}

  // Returns false when the callback asked to stop.
  bool feed(std::string_view bytes, const EventCallback& on_event);
  // Bytes of an event whose end has not arrived: when a stream ends with some, it was cut
  // mid-event, and that event must not be applied.
  size_t pendingBytes() const { return pending_.size(); }

 private:
  bool deliver(std::string_view line, const EventCallback& on_event);

  const PodParseOptions options_;
  std::string pending_;
};

}  // namespace k8s

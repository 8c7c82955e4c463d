#include "k8s/watch_stream_parser.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace k8s {
namespace {

std::optional<WatchEventType> eventTypeFrom(std::string_view name) {
  if (name == "ADDED") return WatchEventType::kAdded;
  if (name == "MODIFIED") return WatchEventType::kModified;
  if (name == "DELETED") return WatchEventType::kDeleted;
  if (name == "BOOKMARK") return WatchEventType::kBookmark;
  if (name == "ERROR") return WatchEventType::kError;
  return std::nullopt;
}

std::string excerpt(std::string_view line) {
  return std::string(line.substr(0, 120)) + (line.size() > 120 ? "..." : "");
}

}  // namespace

const char* toString(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

absl::StatusOr<WatchEvent> parseWatchEvent(std::string_view line, const PodParseOptions& options) {
  auto document = parseDocument(line, options);
  if (!document.ok()) {
    return absl::DataLossError(
        absl::StrCat("watch event: ", document.status().message(), ": ", excerpt(line)));
  }
  const auto type = eventTypeFrom(document->type);
  if (!type || document->objects.size() != 1) {
    return absl::DataLossError(absl::StrCat("not a watch event: ", excerpt(line)));
  }
  ParsedObject& object = document->objects.front();
  WatchEvent event;
  event.type = *type;
  if (*type == WatchEventType::kError) {
    if (object.kind != "Status") {
      return absl::DataLossError(absl::StrCat("ERROR watch event carries a ", object.kind));
    }
    event.error_code = object.status_code;
    event.error_reason = std::move(object.status_reason);
    event.error_message = std::move(object.status_message);
    return event;
  }
  if (object.kind != "Pod") {
    return absl::DataLossError(absl::StrCat("unexpected object kind \"", object.kind,
                                            "\" in a Pod watch ", toString(*type)));
  }
  // A bookmark's object is a bare Pod that only carries the resourceVersion.
  event.resource_version = object.pod.resource_version;
  if (*type == WatchEventType::kBookmark) {
    if (event.resource_version.empty()) {
      return absl::DataLossError("BOOKMARK without a resourceVersion");
    }
    return event;
  }
  if (auto identity = checkPodIdentity(object.pod); !identity.ok()) {
    return absl::DataLossError(absl::StrCat("watch ", toString(*type), ": ", identity.message()));
  }
  event.pod = std::move(object.pod);
  return event;
}

bool WatchStreamParser::deliver(std::string_view line, const EventCallback& on_event) {
  if (absl::StripAsciiWhitespace(absl::string_view(line.data(), line.size())).empty()) return true;
  return on_event(parseWatchEvent(line, options_));
}

bool WatchStreamParser::feed(std::string_view bytes, const EventCallback& on_event) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    if (newline == std::string_view::npos) {
      pending_.append(bytes);
      return true;
    }
    bool go_on;
    if (pending_.empty()) {
      // The common case, one or more whole events in a read: parse in place, no copy.
      go_on = deliver(bytes.substr(0, newline), on_event);
    } else {
      pending_.append(bytes.substr(0, newline));
      std::string line = std::move(pending_);
      pending_.clear();
      go_on = deliver(line, on_event);
    }
    bytes.remove_prefix(newline + 1);
    if (!go_on) {
      pending_.clear();
      return false;
    }
  }
  return true;
}

}  // namespace k8s

#include "k8s/watch_stream_parser.h"

#include <nlohmann/json.hpp>

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
  nlohmann::json document = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded() || !document.is_object()) {
    return absl::DataLossError(absl::StrCat("malformed watch event: ", excerpt(line)));
  }
  auto type_it = document.find("type");
  auto object_it = document.find("object");
  if (type_it == document.end() || !type_it->is_string() || object_it == document.end() ||
      !object_it->is_object()) {
    return absl::DataLossError(absl::StrCat("watch event without type or object: ", excerpt(line)));
  }
  const auto type = eventTypeFrom(type_it->get_ref<const std::string&>());
  if (!type) {
    return absl::DataLossError(
        absl::StrCat("unknown watch event type ", type_it->get<std::string>()));
  }
  const nlohmann::json& object = *object_it;
  const std::string kind = object.value("kind", "");
  WatchEvent event;
  event.type = *type;
  if (*type == WatchEventType::kError) {
    if (kind != "Status") {
      return absl::DataLossError(absl::StrCat("ERROR watch event carries a ", kind));
    }
    event.error_code = object.value("code", 0);
    event.error_reason = object.value("reason", "");
    event.error_message = object.value("message", "");
    return event;
  }
  if (kind != "Pod") {
    return absl::DataLossError(
        absl::StrCat("unexpected object kind \"", kind, "\" in a Pod watch ", toString(*type)));
  }
  if (*type == WatchEventType::kBookmark) {
    // A bookmark's object is a bare Pod that only carries the resourceVersion.
    const auto metadata = object.find("metadata");
    if (metadata != object.end() && metadata->is_object()) {
      event.resource_version = metadata->value("resourceVersion", "");
    }
    if (event.resource_version.empty()) {
      return absl::DataLossError("BOOKMARK without a resourceVersion");
    }
    return event;
  }
  auto pod = podFromJson(object, options);
  if (!pod.ok()) return pod.status();
  event.resource_version = pod->resource_version;
  event.pod = std::move(*pod);
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

#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "k8s/pod.h"

namespace k8s {

struct PodParseOptions {
  // When set, a parsed Pod keeps only these annotations: kubectl's last-applied-configuration
  // alone is often larger than everything else the agent keeps of a Pod.
  std::optional<std::set<std::string, std::less<>>> annotation_keys;
};

// An object found where a Pod belongs: a watch event's `object` or a list's item. For an ERROR
// event it is a Status, whose code, reason and message are kept.
struct ParsedObject {
  std::string kind;  // empty for list items, which carry none
  Pod pod;           // the Pod fields that were present (a BOOKMARK has only resourceVersion)
  int status_code = 0;
  std::string status_reason;
  std::string status_message;
};

// What the client reads of a PodList page or of one watch event.
struct ParsedDocument {
  std::string kind;                   // "PodList" for a list
  std::string type;                   // a watch event's type
  std::string resource_version;       // a list's metadata.resourceVersion
  std::string continue_token;         // a list's metadata.continue
  std::vector<ParsedObject> objects;  // the event's object, or the list's items
};

// Reads a list page or a watch event in one pass, without building a JSON tree: only the
// fields above are kept, which is several times faster than a DOM and holds no JSON after.
// Malformed JSON, or an annotation that is not a string, is an error.
absl::StatusOr<ParsedDocument> parseDocument(std::string_view json,
                                             const PodParseOptions& options = {});

// A Pod is only usable with its identity: uid, namespace, name and resourceVersion.
absl::Status checkPodIdentity(const Pod& pod);

}  // namespace k8s

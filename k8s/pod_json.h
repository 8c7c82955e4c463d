#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "k8s/pod.h"

namespace k8s {

struct PodParseOptions {
  // When set, a parsed Pod keeps only these annotations: kubectl's last-applied-configuration
  // alone is often larger than everything else the agent keeps of a Pod.
  std::optional<std::set<std::string, std::less<>>> annotation_keys;
};

// core/v1 Pod JSON (a list item or a watch event's object) → the fields the agent acts on.
// Fails when the identity (uid, namespace, name, resourceVersion) is missing or mistyped.
absl::StatusOr<Pod> podFromJson(const nlohmann::json& object, const PodParseOptions& options = {});

}  // namespace k8s

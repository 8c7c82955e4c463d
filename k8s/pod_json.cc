#include "k8s/pod_json.h"

#include "absl/strings/str_cat.h"

namespace k8s {
namespace {

const nlohmann::json* member(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string stringMember(const nlohmann::json& object, const char* key) {
  const nlohmann::json* value = member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

}  // namespace

absl::StatusOr<Pod> podFromJson(const nlohmann::json& object, const PodParseOptions& options) {
  const nlohmann::json* metadata = member(object, "metadata");
  if (metadata == nullptr || !metadata->is_object()) {
    return absl::InvalidArgumentError("Pod without metadata");
  }
  Pod pod;
  pod.uid = stringMember(*metadata, "uid");
  pod.namespace_ = stringMember(*metadata, "namespace");
  pod.name = stringMember(*metadata, "name");
  pod.resource_version = stringMember(*metadata, "resourceVersion");
  if (pod.uid.empty() || pod.namespace_.empty() || pod.name.empty() ||
      pod.resource_version.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Pod without uid, namespace, name or resourceVersion: ", pod.namespace_, "/", pod.name));
  }
  pod.creation_timestamp = stringMember(*metadata, "creationTimestamp");
  const nlohmann::json* deletion = member(*metadata, "deletionTimestamp");
  pod.terminating = deletion != nullptr && !deletion->is_null();
  if (const nlohmann::json* annotations = member(*metadata, "annotations")) {
    if (!annotations->is_object() && !annotations->is_null()) {
      return absl::InvalidArgumentError(
          absl::StrCat("Pod ", pod.namespace_, "/", pod.name, ": annotations is not a map"));
    }
    for (const auto& [key, value] : annotations->items()) {
      if (options.annotation_keys && options.annotation_keys->count(key) == 0) continue;
      if (!value.is_string()) {
        return absl::InvalidArgumentError(absl::StrCat("Pod ", pod.namespace_, "/", pod.name,
                                                       ": annotation ", key, " is not a string"));
      }
      pod.annotations.emplace(key, value.get<std::string>());
    }
  }
  if (const nlohmann::json* spec = member(object, "spec")) {
    pod.node_name = stringMember(*spec, "nodeName");
    const nlohmann::json* host_network = member(*spec, "hostNetwork");
    pod.host_network =
        host_network != nullptr && host_network->is_boolean() && host_network->get<bool>();
  }
  if (const nlohmann::json* status = member(object, "status")) {
    pod.phase = stringMember(*status, "phase");
  }
  return pod;
}

}  // namespace k8s

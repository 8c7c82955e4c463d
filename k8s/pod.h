#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace k8s {

// The part of a core/v1 Pod that this node agent acts on. Plain data: parsing lives in the
// k8s client, and the capture engine reads it without knowing any JSON or HTTP.
struct Pod {
  std::string uid;
  std::string namespace_;
  std::string name;
  std::string node_name;           // spec.nodeName
  std::string resource_version;    // metadata.resourceVersion
  std::string creation_timestamp;  // metadata.creationTimestamp, RFC 3339
  std::map<std::string, std::string> annotations;
  bool host_network = false;  // spec.hostNetwork
  bool terminating = false;   // metadata.deletionTimestamp is set
  std::string phase;          // status.phase

  bool operator==(const Pod&) const = default;
};

// On the mirror Pod the API server holds for a static Pod (a manifest the kubelet runs itself):
// the static Pod's own UID, which the kubelet gives its sandboxes (io.kubernetes.pod.uid), not
// the mirror's metadata.uid.
inline constexpr char kMirrorPodAnnotation[] = "kubernetes.io/config.mirror";

// The UID the kubelet labels the Pod's sandboxes with: a mirror Pod's static UID, or its own.
inline const std::string& sandboxUidOf(const Pod& pod) {
  auto mirror = pod.annotations.find(kMirrorPodAnnotation);
  return mirror != pod.annotations.end() && !mirror->second.empty() ? mirror->second : pod.uid;
}

// Read access to the informer's cache, keyed by UID. Safe to call from any thread.
class PodLister {
 public:
  virtual ~PodLister() = default;
  virtual std::optional<Pod> get(std::string_view uid) const = 0;
  virtual std::vector<Pod> list() const = 0;
};

// Receives each change to the cache once, in the order the API server made them. Called from
// the informer's own dispatch thread, never from the thread that reads the watch stream.
class PodEventHandler {
 public:
  virtual ~PodEventHandler() = default;
  virtual void onAdd(const Pod& pod) = 0;
  virtual void onUpdate(const Pod& old_pod, const Pod& new_pod) = 0;
  virtual void onDelete(const Pod& pod) = 0;
};

}  // namespace k8s

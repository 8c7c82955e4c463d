#pragma once

#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "k8s/pod.h"

namespace k8s {

// What one observation changed in the cache: the notification a PodEventHandler gets.
struct PodChange {
  enum class Kind { kAdd, kUpdate, kDelete };
  Kind kind;
  Pod old_pod;  // kUpdate, kDelete: the cached state before
  Pod new_pod;  // kAdd, kUpdate

  bool operator==(const PodChange&) const = default;
};

// The informer's store of Pods by UID, and the one place that decides which observations are
// changes: a Pod seen again with the same resourceVersion is not one, so that a resumed watch
// or a relist never delivers a change twice. Thread-safe; the informer's dispatcher is its only
// writer, and PodLister readers may be on any thread.
class PodCache : public PodLister {
 public:
  // ADDED or MODIFIED: an add when the UID is new, an update when its resourceVersion moved.
  std::optional<PodChange> upsert(Pod pod);
  // DELETED: a delete carrying the last cached state; nothing when the UID was unknown.
  std::optional<PodChange> remove(const Pod& pod);
  // A full list: deletes for cached Pods that are gone, then adds and updates, in list order.
  std::vector<PodChange> replace(std::vector<Pod> pods);

  std::optional<Pod> get(std::string_view uid) const override;
  std::vector<Pod> list() const override;
  size_t size() const;

 private:
  std::optional<PodChange> upsertLocked(Pod pod);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Pod> pods_;
};

}  // namespace k8s

#include "k8s/pod_cache.h"

#include <unordered_set>

namespace k8s {

std::optional<PodChange> PodCache::upsertLocked(Pod pod) {
  auto it = pods_.find(pod.uid);
  if (it == pods_.end()) {
    std::string uid = pod.uid;
    PodChange change{PodChange::Kind::kAdd, {}, pod};
    pods_.emplace(std::move(uid), std::move(pod));
    return change;
  }
  if (it->second.resource_version == pod.resource_version) return std::nullopt;
  PodChange change{PodChange::Kind::kUpdate, std::move(it->second), pod};
  it->second = std::move(pod);
  return change;
}

std::optional<PodChange> PodCache::upsert(Pod pod) {
  std::lock_guard lock(mutex_);
  return upsertLocked(std::move(pod));
}

std::optional<PodChange> PodCache::remove(const Pod& pod) {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(pod.uid);
  if (it == pods_.end()) return std::nullopt;
  PodChange change{PodChange::Kind::kDelete, std::move(it->second), {}};
  pods_.erase(it);
  return change;
}

std::vector<PodChange> PodCache::replace(std::vector<Pod> pods) {
  std::lock_guard lock(mutex_);
  std::vector<PodChange> changes;
  std::unordered_set<std::string_view> listed;
  listed.reserve(pods.size());
  for (const Pod& pod : pods) listed.insert(pod.uid);
  for (auto it = pods_.begin(); it != pods_.end();) {
    if (listed.count(it->first) != 0) {
      ++it;
      continue;
    }
    changes.push_back(PodChange{PodChange::Kind::kDelete, std::move(it->second), {}});
    it = pods_.erase(it);
  }
  listed.clear();  // its views point into `pods`, which is moved from below
  for (Pod& pod : pods) {
    if (auto change = upsertLocked(std::move(pod))) changes.push_back(std::move(*change));
  }
  return changes;
}

std::optional<Pod> PodCache::get(std::string_view uid) const {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(std::string(uid));
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

std::vector<Pod> PodCache::list() const {
  std::lock_guard lock(mutex_);
  std::vector<Pod> out;
  out.reserve(pods_.size());
  for (const auto& [uid, pod] : pods_) out.push_back(pod);
  return out;
}

size_t PodCache::size() const {
  std::lock_guard lock(mutex_);
  return pods_.size();
}

}  // namespace k8s

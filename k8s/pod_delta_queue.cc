#include "k8s/pod_delta_queue.h"

namespace k8s {

void PodDeltaQueue::pushLocked(Key key) {
  if (order_.push(std::move(key))) high_water_ = std::max(high_water_, order_.size());
}

void PodDeltaQueue::foldLocked(Pod pod, bool remove) {
  PendingList& list = *list_;
  if (list.index.empty() && !list.pods.empty()) {
    list.index.reserve(list.pods.size());
    for (size_t i = 0; i < list.pods.size(); ++i) list.index.emplace(list.pods[i]->uid, i);
  }
  ++collapsed_;
  auto it = list.index.find(pod.uid);
  if (remove) {
    if (it != list.index.end()) list.pods[it->second].reset();
    return;
  }
  if (it != list.index.end()) {
    list.pods[it->second] = std::move(pod);
  } else {
    list.index.emplace(pod.uid, list.pods.size());
    list.pods.emplace_back(std::move(pod));
  }
}

void PodDeltaQueue::upsert(Pod pod) {
  std::lock_guard lock(mutex_);
  if (list_) return foldLocked(std::move(pod), /*remove=*/false);
  auto [it, added] = entries_.try_emplace(pod.uid);
  if (!added) ++collapsed_;
  it->second.upsert = std::move(pod);
  if (added) pushLocked(Key{false, it->first});
}

void PodDeltaQueue::remove(const Pod& pod) {
  std::lock_guard lock(mutex_);
  if (list_) return foldLocked(pod, /*remove=*/true);
  auto [it, added] = entries_.try_emplace(pod.uid);
  if (!added) ++collapsed_;
  it->second.remove = true;
  it->second.upsert.reset();
  if (added) pushLocked(Key{false, it->first});
}

void PodDeltaQueue::replace(std::vector<Pod> pods) {
  std::lock_guard lock(mutex_);
  // Their keys stay queued, ahead of the list's, and are skipped: until the dispatcher takes
  // the list, no entry is made (changes fold into the list), so no key can find a new one.
  collapsed_ += entries_.size();
  entries_.clear();
  const bool queued = list_.has_value();
  if (queued) ++collapsed_;
  list_.emplace();
  list_->pods.reserve(pods.size());
  for (Pod& pod : pods) list_->pods.emplace_back(std::move(pod));
  if (!queued) pushLocked(Key{true, {}});
}

std::optional<PodDeltaQueue::Delta> PodDeltaQueue::pop() {
  while (std::optional<Key> key = order_.pop()) {
    std::lock_guard lock(mutex_);
    Delta delta;
    if (order_.closed()) break;  // close() came between the two locks
    if (key->list) {
      delta.kind = Delta::Kind::kList;
      delta.pods.reserve(list_->pods.size());
      for (std::optional<Pod>& pod : list_->pods) {
        if (pod) delta.pods.push_back(*std::move(pod));
      }
      list_.reset();
      return delta;
    }
    auto it = entries_.find(key->uid);
    if (it == entries_.end()) {  // superseded by the list queued after it
      order_.done();
      continue;
    }
    delta.uid = std::move(key->uid);
    delta.remove = it->second.remove;
    delta.upsert = std::move(it->second.upsert);
    entries_.erase(it);
    return delta;
  }
  return std::nullopt;
}

size_t PodDeltaQueue::close() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  list_.reset();
  return order_.close();
}

size_t PodDeltaQueue::queued() const {
  std::lock_guard lock(mutex_);
  return entries_.size() + (list_ ? 1 : 0);
}

size_t PodDeltaQueue::highWater() const {
  std::lock_guard lock(mutex_);
  return high_water_;
}

uint64_t PodDeltaQueue::collapsed() const {
  std::lock_guard lock(mutex_);
  return collapsed_;
}

}  // namespace k8s

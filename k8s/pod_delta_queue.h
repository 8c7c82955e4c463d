#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/blocking_queue.h"
#include "k8s/pod.h"

namespace k8s {

// What the informer's watcher saw and its dispatcher has not taken yet, collapsed per Pod UID
// like client-go's DeltaFIFO, so that a slow handler costs memory per Pod, not per change:
//  - an ADDED or MODIFIED of a Pod with a change queued replaces that change's object, in place;
//  - a DELETED replaces it with the delete;
//  - an ADDED or MODIFIED after a queued delete is kept after it: the entry says "remove, then
//    upsert" (a UID is never reused, so this is a formality);
//  - a list (relist) supersedes everything queued: the queue becomes that one list, and what
//    the watch sees until the dispatcher takes it is folded into it (an upsert sets the Pod's
//    entry of the list, a delete removes it); the cache turns it into differences.
// The dispatcher gets each Pod's latest state once, in the order of the Pod's first queued
// change. A Pod added and deleted while queued (never in the cache) is dropped: the cache has
// nothing to remove, and the handler never heard of it.
//
// Bound: at most one entry per Pod UID with a change queued, plus one list. A list leaves the
// keys of the entries it superseded in the underlying base::BlockingQueue (the UID alone, the
// Pods are freed) until the dispatcher skips them, so the queue never holds more than
// (Pods + 1) keys. Thread-safe: one watcher pushes, one dispatcher pops.
class PodDeltaQueue {
 public:
  // One thing for the dispatcher to apply.
  struct Delta {
    enum class Kind { kPod, kList };
    Kind kind = Kind::kPod;
    std::string uid;            // kPod
    bool remove = false;        // kPod: a DELETED came: remove the cached Pod first
    std::optional<Pod> upsert;  // kPod: then this, the latest ADDED or MODIFIED
    std::vector<Pod> pods;      // kList
  };

  void upsert(Pod pod);
  void remove(const Pod& pod);
  void replace(std::vector<Pod> pods);

  // The oldest entry, waiting for one; nullopt once closed. Call done() once it is applied.
  std::optional<Delta> pop();
  void done() { order_.done(); }

  // Wakes pop() and waitClosed(); what is queued is dropped. Returns how many keys were queued.
  size_t close();
  bool waitClosed(std::chrono::steady_clock::duration timeout) {
    return order_.waitClosed(timeout);
  }

  size_t queued() const;       // entries the dispatcher will get: one per Pod, plus a list
  size_t highWater() const;    // the most keys ever queued, superseded ones included
  uint64_t collapsed() const;  // observations merged into an entry already queued

 private:
  struct Key {
    bool list = false;
    std::string uid;
  };
  struct Entry {
    bool remove = false;
    std::optional<Pod> upsert;
  };
  // The queued list and what the watch saw since.
  struct PendingList {
    std::vector<std::optional<Pod>> pods;           // nullopt: deleted since
    std::unordered_map<std::string, size_t> index;  // by UID; built at the first change folded in
  };

  void foldLocked(Pod pod, bool remove);
  void pushLocked(Key key);

  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;  // by UID
  std::optional<PendingList> list_;
  size_t high_water_ = 0;
  uint64_t collapsed_ = 0;
  base::BlockingQueue<Key> order_;  // keys in the order of first change; closed at close()
};

}  // namespace k8s

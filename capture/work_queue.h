#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "capture/clock.h"

namespace capture {

// Keys (Pod UIDs) waiting to be reconciled, each at most once, each with the time it is due.
// Adding a key that is already queued keeps the earlier of the two times, so a burst of
// changes to one Pod becomes one reconcile. Safe to use from any thread; real time only.
class WorkQueue {
 public:
  void add(const std::string& key) { addAfter(key, Duration::zero()); }
  void addAfter(const std::string& key, Duration delay);

  // The next due key, removed from the queue; nullopt when `until` came first or at shutdown.
  std::optional<std::string> get(TimePoint until);

  void shutDown();
  bool shuttingDown() const;
  size_t size() const;
  // Whether get() would return a key at once.
  bool hasDue() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, TimePoint> due_;
  std::set<std::pair<TimePoint, std::string>> by_time_;
  bool shut_down_ = false;
};

}  // namespace capture

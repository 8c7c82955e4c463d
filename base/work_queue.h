#pragma once

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "base/clock.h"

namespace base {

// Keys (Pod UIDs) waiting to be handled, each at most once, each with the time it is due, like
// client-go's delaying workqueue. Adding a key that is already queued keeps the earlier of the
// two times, so a burst of changes to one Pod becomes one reconcile. Safe to use from any thread;
// real time only.
class WorkQueue {
 public:
  void add(const std::string& key) { addAfter(key, Duration::zero()); }

  void addAfter(const std::string& key, Duration delay) {
    const TimePoint due = std::chrono::steady_clock::now() + delay;
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    auto [it, inserted] = due_.try_emplace(key, due);
    if (!inserted) {
      if (it->second <= due) return;
      by_time_.erase({it->second, key});
      it->second = due;
    }
    by_time_.emplace(due, key);
    changed_.notify_one();
  }

  // The next due key, removed from the queue; nullopt when `until` came first or at shutdown.
  std::optional<std::string> get(TimePoint until) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!shut_down_) {
      const TimePoint now = std::chrono::steady_clock::now();
      if (!by_time_.empty() && by_time_.begin()->first <= now) {
        std::string key = by_time_.begin()->second;
        by_time_.erase(by_time_.begin());
        due_.erase(key);
        return key;
      }
      if (now >= until) return std::nullopt;
      const TimePoint wake = by_time_.empty() ? until : std::min(until, by_time_.begin()->first);
      changed_.wait_until(lock, wake);
    }
    return std::nullopt;
  }

  void shutDown() {
    std::lock_guard<std::mutex> lock(mu_);
    shut_down_ = true;
    due_.clear();
    by_time_.clear();
    changed_.notify_all();
  }

  bool shuttingDown() const {
    std::lock_guard<std::mutex> lock(mu_);
    return shut_down_;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return due_.size();
  }

  // Whether get() would return a key at once.
  bool hasDue() const {
    std::lock_guard<std::mutex> lock(mu_);
    return !by_time_.empty() && by_time_.begin()->first <= std::chrono::steady_clock::now();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, TimePoint> due_;
  std::set<std::pair<TimePoint, std::string>> by_time_;
  bool shut_down_ = false;
};

}  // namespace base

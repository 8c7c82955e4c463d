#include "capture/work_queue.h"

#include <algorithm>

namespace capture {

void WorkQueue::addAfter(const std::string& key, Duration delay) {
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

std::optional<std::string> WorkQueue::get(TimePoint until) {
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

void WorkQueue::shutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shut_down_ = true;
  due_.clear();
  by_time_.clear();
  changed_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shut_down_;
}

bool WorkQueue::hasDue() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !by_time_.empty() && by_time_.begin()->first <= std::chrono::steady_clock::now();
}

size_t WorkQueue::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return due_.size();
}

}  // namespace capture

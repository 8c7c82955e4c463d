#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>

namespace base {

// A FIFO between threads: producers push() and never wait, one consumer pop()s and calls done()
// when it has handled the item, so that waitDrained() can tell "everything handled" (a flush at
// shutdown) from "everything taken". close() wakes every waiter: pop() returns nullopt from
// then on, and the items still queued are dropped. Thread-safe.
template <typename T>
class BlockingQueue {
 public:
  explicit BlockingQueue(size_t capacity = std::numeric_limits<size_t>::max())
      : capacity_(capacity) {}

  // False, and `item` dropped, when the queue is closed or holds `capacity` items.
  bool push(T item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_ || items_.size() >= capacity_) return false;
      items_.push_back(std::move(item));
    }
    changed_.notify_all();
    return true;
  }

  // The oldest item, once there is one; nullopt once the queue is closed.
  std::optional<T> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait(lock, [this] { return closed_ || !items_.empty(); });
    if (closed_) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    ++in_flight_;
    return item;
  }

  // The oldest item if there is one now, without waiting; nullopt when empty or closed.
  std::optional<T> tryPop() {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || items_.empty()) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    ++in_flight_;
    return item;
  }

  // The consumer handled the item of its last pop() or tryPop().
  void done() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_flight_ > 0) --in_flight_;
    }
    changed_.notify_all();
  }

  // Until every item pushed so far was popped and done; false when `timeout` came first.
  bool waitDrained(std::chrono::steady_clock::duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return items_.empty() && in_flight_ == 0; });
  }

  // Sleeps up to `timeout`, waking at once when the queue is closed; true when it is closed.
  bool waitClosed(std::chrono::steady_clock::duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, timeout, [this] { return closed_; });
  }

  // Returns how many items were still queued (and are dropped).
  size_t close() {
    size_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      dropped = items_.size();
      items_.clear();
    }
    changed_.notify_all();
    return dropped;
  }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<T> items_;
  size_t in_flight_ = 0;
  bool closed_ = false;
};

}  // namespace base

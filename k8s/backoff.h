#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace k8s {

// Exponential backoff with jitter, capped: each delay is drawn from [d/2, d], then d doubles
// up to `max`. The jitter keeps the agents of a whole cluster from reconnecting in step after
// an API server restart; the lower half keeps a minimum pause.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(std::max(initial, std::chrono::milliseconds(1))),
        max_(std::max(max, initial_)),
        current_(initial_),
        random_(std::random_device{}()) {}

  std::chrono::milliseconds next() {
    std::uniform_int_distribution<long> pick(current_.count() / 2, current_.count());
    const std::chrono::milliseconds delay(pick(random_));
    current_ = std::min(current_ * 2, max_);
    return delay;
  }

  void reset() { current_ = initial_; }

 private:
  const std::chrono::milliseconds initial_;
  const std::chrono::milliseconds max_;
  std::chrono::milliseconds current_;
  std::mt19937 random_;
};

}  // namespace k8s

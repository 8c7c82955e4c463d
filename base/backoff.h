#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace base {

// Exponential backoff, capped, with jitter: each delay is drawn from [d * (1 - jitter), d],
// then d doubles up to `max`. The jitter keeps the agents of a whole cluster (or the retries of
// many captures) from going in step; its lower bound keeps a minimum pause. jitter 0 gives
// exactly initial, 2 * initial, ... max.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, double jitter = 0.5)
      : initial_(std::max(initial, std::chrono::milliseconds(1))),
        max_(std::max(max, initial_)),
        jitter_(std::clamp(jitter, 0.0, 1.0)),
        current_(initial_),
        random_(std::random_device{}()) {}

  std::chrono::milliseconds next() {
    const auto lowest = static_cast<long>(current_.count() * (1.0 - jitter_));
    std::uniform_int_distribution<long> pick(lowest, current_.count());
    const std::chrono::milliseconds delay(pick(random_));
    current_ = std::min(current_ * 2, max_);
    return delay;
  }

  void reset() { current_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  double jitter_;
  std::chrono::milliseconds current_;
  std::mt19937 random_;
};

}  // namespace base

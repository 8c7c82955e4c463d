#pragma once

#include <chrono>

namespace base {

using Duration = std::chrono::milliseconds;
using TimePoint = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// The reconciler reads time only through this, so that tests can step through backoff and
// resync without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  // The time of day, for what must outlive the process (a capture's start, saved with it): the
  // steady clock starts again with each boot.
  virtual WallTime wallNow() const { return std::chrono::system_clock::now(); }
};

class SteadyClock : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace base

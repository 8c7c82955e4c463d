#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace testsupport {

// Polls `condition` until it holds or `timeout` passes: for state that another thread or process
// changes without notifying the test (files, /proc, a server's records). Returns whether it held.
inline bool waitUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10),
                      std::chrono::milliseconds poll = std::chrono::milliseconds(2)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

}  // namespace testsupport

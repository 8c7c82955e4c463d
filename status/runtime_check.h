#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace status {

// Whether the container runtime answered its last Version call, as RuntimeCheck saw it.
struct RuntimeHealth {
  bool reachable = false;
  std::string detail;  // "containerd 1.6.20 (CRI v1)", or why it is unreachable
};

// Calls `probe` (a CRI Version) on its own thread every `period`, so that /readyz reads the last
// answer at once: a hung containerd holds a CRI call for the whole --cri-timeout, longer than a
// kubelet probe waits. Logs each change between reachable and unreachable.
class RuntimeCheck {
 public:
  // Returns the runtime's name and version, or why it did not answer.
  using Probe = std::function<absl::StatusOr<std::string>()>;

  RuntimeCheck(Probe probe, std::chrono::milliseconds period);
  ~RuntimeCheck();  // stop()
  RuntimeCheck(const RuntimeCheck&) = delete;
  RuntimeCheck& operator=(const RuntimeCheck&) = delete;

  // Probes once on the calling thread (start-up logs the runtime's version before going on),
  // then keeps probing in the background.
  RuntimeHealth start();
  void stop();
  RuntimeHealth current() const;

 private:
  void record(absl::StatusOr<std::string> answer);
  void run();

  const Probe probe_;
  const std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::condition_variable stopping_changed_;
  bool stopping_ = false;
  bool probed_ = false;
  RuntimeHealth health_;
  std::thread thread_;
};

}  // namespace status

#include "status/runtime_check.h"

#include <glog/logging.h>

namespace status {

RuntimeCheck::RuntimeCheck(Probe probe, std::chrono::milliseconds period)
    : probe_(std::move(probe)), period_(period) {}

RuntimeCheck::~RuntimeCheck() { stop(); }

RuntimeHealth RuntimeCheck::start() {
  record(probe_());
  thread_ = std::thread([this] { run(); });
  return current();
}

void RuntimeCheck::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  stopping_changed_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RuntimeHealth RuntimeCheck::current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

void RuntimeCheck::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_changed_.wait_for(lock, period_, [this] { return stopping_; })) {
    lock.unlock();
    record(probe_());
    lock.lock();
  }
}

void RuntimeCheck::record(absl::StatusOr<std::string> answer) {
  RuntimeHealth now;
  now.reachable = answer.ok();
  now.detail = answer.ok() ? *answer : std::string(answer.status().message());
  std::lock_guard<std::mutex> lock(mu_);
  if (!probed_ || now.reachable != health_.reachable) {
    if (now.reachable) {
      LOG(INFO) << "container runtime: " << now.detail;
    } else {
      LOG(ERROR) << "container runtime not reachable: " << now.detail
                 << " (not ready; captures fail and are retried until it answers)";
    }
  }
  probed_ = true;
  health_ = std::move(now);
}

}  // namespace status

#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "k8s/pod.h"
#include "tests/support/wait.h"

namespace k8stest {

// A PodEventHandler that writes each call down as one line ("add rec/web-0"), for tests to
// compare with the exact sequence they expect.
class RecordingHandler : public k8s::PodEventHandler {
 public:
  void onAdd(const k8s::Pod& pod) override { record("add " + key(pod)); }
  void onUpdate(const k8s::Pod& old_pod, const k8s::Pod& new_pod) override {
    record("update " + key(new_pod) + describeChange(old_pod, new_pod));
  }
  void onDelete(const k8s::Pod& pod) override { record("delete " + key(pod)); }

  std::vector<std::string> calls() const {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  // Waits until at least `count` calls were made.
  bool waitForCalls(size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return calls_.size() >= count; });
  }
  void clear() {
    std::lock_guard lock(mutex_);
    calls_.clear();
  }

 private:
  static std::string key(const k8s::Pod& pod) { return pod.namespace_ + "/" + pod.name; }
  static std::string describeChange(const k8s::Pod& before, const k8s::Pod& after) {
    std::string what;
    for (const auto& [name, value] : after.annotations) {
      auto it = before.annotations.find(name);
      if (it == before.annotations.end() || it->second != value) what += " +" + name + "=" + value;
    }
    for (const auto& [name, value] : before.annotations) {
      if (after.annotations.count(name) == 0) what += " -" + name;
    }
    if (!before.terminating && after.terminating) what += " terminating";
    if (before.phase != after.phase) what += " phase=" + after.phase;
    return what;
  }
  void record(std::string call) {
    {
      std::lock_guard lock(mutex_);
      calls_.push_back(std::move(call));
    }
    changed_.notify_all();
  }

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> calls_;
};

using testsupport::waitUntil;

}  // namespace k8stest

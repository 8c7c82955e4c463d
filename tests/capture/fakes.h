#pragma once

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "cri/sandbox_resolver.h"
#include "k8s/event_sink.h"
#include "k8s/pod.h"
#include "proc/process_launcher.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

// Fakes of the capture policy's seams. Each is thread-safe, because the CaptureWorker calls them
// from its worker thread while the test thread edits them.
namespace capture::testing {

using base::Clock;
using base::Duration;
using base::TimePoint;
using proc::ExitStatus;
using proc::LaunchedProcess;
using proc::LaunchSpec;
using proc::ProcessExit;
using proc::ProcessId;
using proc::ProcessLauncher;

inline k8s::Pod makePod(std::string uid, std::string ns, std::string name,
                        std::optional<std::string> annotation, std::string node = "node-1") {
  k8s::Pod pod;
  pod.uid = std::move(uid);
  pod.namespace_ = std::move(ns);
  pod.name = std::move(name);
  pod.node_name = std::move(node);
  pod.phase = "Running";
  pod.creation_timestamp = "2026-11-22T10:00:00Z";
  if (annotation) pod.annotations["tcpdump.antrea.io"] = *annotation;
  return pod;
}

inline cri::SandboxInfo makeSandbox(std::string id, std::string netns, int64_t pid = 4242) {
  cri::SandboxInfo info;
  info.id = std::move(id);
  info.state = cri::SandboxState::kReady;
  info.netns_path = std::move(netns);
  info.pid = pid;
  return info;
}

class FakePodLister : public k8s::PodLister {
 public:
  void set(const k8s::Pod& pod) {
    std::lock_guard<std::mutex> lock(mu_);
    pods_[pod.uid] = pod;
  }
  void remove(const std::string& uid) {
    std::lock_guard<std::mutex> lock(mu_);
    pods_.erase(uid);
  }
  std::optional<k8s::Pod> get(std::string_view uid) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pods_.find(std::string(uid));
    if (it == pods_.end()) return std::nullopt;
    return it->second;
  }
  std::vector<k8s::Pod> list() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<k8s::Pod> pods;
    for (const auto& [uid, pod] : pods_) pods.push_back(pod);
    return pods;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, k8s::Pod> pods_;
};

class FakeResolver : public cri::SandboxResolver {
 public:
  void set(const std::string& uid, absl::StatusOr<cri::SandboxInfo> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    answers_.insert_or_assign(uid, std::move(answer));
  }
  absl::StatusOr<cri::SandboxInfo> resolve(std::string_view uid) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    auto it = answers_.find(std::string(uid));
    if (it == answers_.end()) {
      return cri::resolveError(cri::ResolveFailure::kNoSandbox, "no sandbox for this pod");
    }
    // The resolver's contract, as CriSandboxResolver keeps it: only a READY sandbox resolves.
    if (it->second.ok() && it->second->state != cri::SandboxState::kReady) {
      return cri::resolveError(cri::ResolveFailure::kNoReadySandbox,
                               "sandbox " + it->second->id + " is not ready");
    }
    return it->second;
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, absl::StatusOr<cri::SandboxInfo>> answers_;
  int calls_ = 0;
};

struct RecordedEvent {
  k8s::ObjectReference object;
  k8s::EventType type;
  std::string reason;
  std::string message;
};

class FakeEventSink : public k8s::EventSink {
 public:
  void emit(const k8s::ObjectReference& object, k8s::EventType type, std::string_view reason,
            std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({object, type, std::string(reason), std::string(message)});
  }
  std::vector<RecordedEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<RecordedEvent> withReason(const std::string& reason) const {
    std::vector<RecordedEvent> out;
    for (const RecordedEvent& e : events()) {
      if (e.reason == reason) out.push_back(e);
    }
    return out;
  }
  // The first event with `reason`, waiting for it up to 10 s: a CaptureWorker emits from its
  // worker, after the launcher already shows the process a test may have waited for.
  std::optional<RecordedEvent> waitFor(const std::string& reason) const {
    std::optional<RecordedEvent> found;
    testsupport::waitUntil([&] {
      const std::vector<RecordedEvent> matching = withReason(reason);
      if (!matching.empty()) found = matching.front();
      return found.has_value();
    });
    return found;
  }
  std::vector<std::string> reasons() const {
    std::vector<std::string> out;
    for (const RecordedEvent& e : events()) out.push_back(e.reason);
    return out;
  }
  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    events_.clear();
  }

 private:
  mutable std::mutex mu_;
  std::vector<RecordedEvent> events_;
};

class FakeLauncher : public ProcessLauncher {
 public:
  void setExitHandler(ExitHandler handler) override {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = std::move(handler);
  }
  absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    starts_.push_back(spec);
    if (!fail_with_.ok()) return fail_with_;
    const ProcessId id = next_id_++;
    running_[id] = spec;
    return LaunchedProcess{id, static_cast<pid_t>(1000 + id), spec.netns_path};
  }
  absl::StatusOr<ProcessExit> stop(ProcessId id, Duration grace) override {
    std::lock_guard<std::mutex> lock(mu_);
    stops_.push_back(id);
    auto it = running_.find(id);
    if (it == running_.end()) return absl::NotFoundError("already exited");
    ProcessExit exit{id, it->second.owner, ExitStatus{0, 0}, ""};
    running_.erase(it);
    return exit;
  }

  // The process ends by itself: returns its exit, and hands it to the exit handler when
  // `notify` (as the real launcher's reaper thread would).
  ProcessExit exit(ProcessId id, ExitStatus status, std::string stderr_tail, bool notify = false) {
    ExitHandler handler;
    ProcessExit exit;
    {
      std::lock_guard<std::mutex> lock(mu_);
      exit = ProcessExit{id, running_.at(id).owner, status, std::move(stderr_tail)};
      running_.erase(id);
      handler = handler_;
    }
    if (notify && handler) handler(exit);
    return exit;
  }

  void failStarts(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_with_ = std::move(status);
  }
  std::vector<LaunchSpec> starts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_;
  }
  std::vector<ProcessId> stops() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stops_;
  }
  std::map<ProcessId, LaunchSpec> running() const {
    std::lock_guard<std::mutex> lock(mu_);
    return running_;
  }
  std::optional<ProcessId> runningFor(const std::string& owner) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, spec] : running_) {
      if (spec.owner == owner) return id;
    }
    return std::nullopt;
  }

 private:
  mutable std::mutex mu_;
  ExitHandler handler_;
  absl::Status fail_with_;
  ProcessId next_id_ = 1;
  std::vector<LaunchSpec> starts_;
  std::vector<ProcessId> stops_;
  std::map<ProcessId, LaunchSpec> running_;
};

class FakeClock : public Clock {
 public:
  TimePoint now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void advance(Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_ = TimePoint{} + std::chrono::hours(1);
};

// A capture directory for a test, removed with everything in it.
class TempDir : public testsupport::TempDir {
 public:
  TempDir() : testsupport::TempDir("capture-test") {}
  void touch(const std::string& name, const std::string& content = "x") const {
    std::ofstream(file(name)) << content;
  }
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(path())) {
      out.insert(entry.path().filename().string());
    }
    return out;
  }
};

using testsupport::waitUntil;

}  // namespace capture::testing

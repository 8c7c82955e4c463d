#pragma once

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
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
#include <utility>
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
using proc::ProcessOutput;

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
    std::unique_lock<std::mutex> lock(mu_);
    ++calls_;
    if (waitWhileFrozen(lock)) {
      return cri::resolveError(cri::ResolveFailure::kRuntimeUnavailable, "deadline exceeded");
    }
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
  // What one ListPodSandbox would show: each Pod with an answer that is a sandbox.
  absl::StatusOr<cri::SandboxSnapshot> snapshot() override {
    std::unique_lock<std::mutex> lock(mu_);
    ++snapshots_;
    if (waitWhileFrozen(lock)) {
      return cri::resolveError(cri::ResolveFailure::kRuntimeUnavailable, "deadline exceeded");
    }
    if (!snapshot_error_.ok()) return snapshot_error_;
    cri::SandboxSnapshot snapshot;
    for (const auto& [uid, answer] : answers_) {
      if (!answer.ok()) continue;
      snapshot.newest_ready[uid] = answer->state == cri::SandboxState::kReady ? answer->id : "";
    }
    return snapshot;
  }
  // A runtime that accepts calls and does not answer (a containerd stopped with SIGSTOP): each
  // call waits until thawed, or fails as unavailable after `deadline`, as the CRI client's do.
  void freeze(std::chrono::milliseconds deadline) {
    std::lock_guard<std::mutex> lock(mu_);
    frozen_ = true;
    deadline_ = deadline;
  }
  void thaw() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      frozen_ = false;
    }
    thawed_.notify_all();
  }
  void failSnapshots(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_error_ = std::move(status);
  }
  int snapshots() const {
    std::lock_guard<std::mutex> lock(mu_);
    return snapshots_;
  }
  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  // True when the call timed out.
  bool waitWhileFrozen(std::unique_lock<std::mutex>& lock) {
    return !thawed_.wait_for(lock, deadline_, [this] { return !frozen_; });
  }

  mutable std::mutex mu_;
  std::condition_variable thawed_;
  bool frozen_ = false;
  std::chrono::milliseconds deadline_{0};
  std::map<std::string, absl::StatusOr<cri::SandboxInfo>> answers_;
  absl::Status snapshot_error_;
  int calls_ = 0;
  int snapshots_ = 0;
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

// Processes that exit when told to, as tcpdump does: SIGTERM ends one with status 0 (tcpdump
// flushes and exits), unless ignoreSigterm(); SIGKILL always. Exits go to the exit handler at
// once when one is set (the CaptureWorker's), else they wait in takeExits() for a test that plays
// the worker.
class FakeLauncher : public ProcessLauncher {
 public:
  void setExitHandler(ExitHandler handler) override {
    std::lock_guard<std::mutex> lock(mu_);
    handler_ = std::move(handler);
  }
  void setOutputHandler(OutputHandler handler) override {
    std::lock_guard<std::mutex> lock(mu_);
    output_handler_ = std::move(handler);
  }
  absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    starts_.push_back(spec);
    if (!fail_with_.ok()) return fail_with_;
    const ProcessId id = next_id_++;
    running_[id] = spec;
    return LaunchedProcess{id, static_cast<pid_t>(1000 + id), spec.netns_path};
  }
  absl::Status signal(ProcessId id, int signal) override {
    std::optional<ProcessExit> exit;
    {
      std::lock_guard<std::mutex> lock(mu_);
      signals_.emplace_back(id, signal);
      auto it = running_.find(id);
      if (it == running_.end()) return absl::NotFoundError("already exited");
      if (signal == SIGKILL) {
        exit = ProcessExit{id, it->second.owner, ExitStatus{-1, SIGKILL}, "", ""};
      } else if (signal == SIGTERM && !ignore_sigterm_) {
        exit = ProcessExit{id, it->second.owner, ExitStatus{0, 0}, "", ""};
      }
      if (exit) running_.erase(it);
    }
    if (exit) deliver(*exit);
    return absl::OkStatus();
  }

  // The process ends by itself: returns its exit, and hands it to the exit handler when
  // `notify` (as the real launcher's reaper thread would).
  ProcessExit exit(ProcessId id, ExitStatus status, std::string stderr_tail, bool notify = false) {
    ExitHandler handler;
    ProcessExit exit;
    {
      std::lock_guard<std::mutex> lock(mu_);
      exit = ProcessExit{id, running_.at(id).owner, status, std::move(stderr_tail), ""};
      running_.erase(id);
      handler = handler_;
    }
    if (notify && handler) handler(exit);
    return exit;
  }
  // The process writes `text` to stderr: returns it, and hands it to the output handler when
  // `notify`.
  ProcessOutput output(ProcessId id, std::string text, bool notify = false) {
    OutputHandler handler;
    ProcessOutput output;
    {
      std::lock_guard<std::mutex> lock(mu_);
      output = ProcessOutput{id, running_.at(id).owner, std::move(text)};
      handler = output_handler_;
    }
    if (notify && handler) handler(output);
    return output;
  }
  // Exits that no handler took (no handler set), oldest first.
  std::vector<ProcessExit> takeExits() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(exits_, {});
  }

  void ignoreSigterm(bool ignore) {
    std::lock_guard<std::mutex> lock(mu_);
    ignore_sigterm_ = ignore;
  }
  void failStarts(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_with_ = std::move(status);
  }
  std::vector<LaunchSpec> starts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_;
  }
  // Every signal sent, in order.
  std::vector<std::pair<ProcessId, int>> signals() const {
    std::lock_guard<std::mutex> lock(mu_);
    return signals_;
  }
  // The processes told to stop (SIGTERM), in order.
  std::vector<ProcessId> stops() const {
    std::vector<ProcessId> out;
    for (const auto& [id, signal] : signals()) {
      if (signal == SIGTERM) out.push_back(id);
    }
    return out;
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
  void deliver(ProcessExit exit) {
    ExitHandler handler;
    {
      std::lock_guard<std::mutex> lock(mu_);
      handler = handler_;
      if (!handler) exits_.push_back(exit);
    }
    if (handler) handler(std::move(exit));
  }

  mutable std::mutex mu_;
  ExitHandler handler_;
  OutputHandler output_handler_;
  absl::Status fail_with_;
  bool ignore_sigterm_ = false;
  ProcessId next_id_ = 1;
  std::vector<LaunchSpec> starts_;
  std::vector<std::pair<ProcessId, int>> signals_;
  std::map<ProcessId, LaunchSpec> running_;
  std::vector<ProcessExit> exits_;
};

class FakeClock : public Clock {
 public:
  TimePoint now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  // Moves with now(): 2026-11-22T10:00:00Z when now() is its start.
  base::WallTime wallNow() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return base::WallTime(std::chrono::seconds(1'795'341'600)) + (now_ - kStart);
  }
  void advance(Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  static constexpr TimePoint kStart = TimePoint{} + std::chrono::hours(1);
  mutable std::mutex mu_;
  TimePoint now_ = kStart;
};

// A capture directory for a test, removed with everything in it.
class TempDir : public testsupport::TempDir {
 public:
  TempDir() : testsupport::TempDir("capture-test") {}
  void touch(const std::string& name, const std::string& content = "x") const {
    std::ofstream(file(name)) << content;
  }
  // What `ls` shows: not the hidden files a capture is saved in (capture/saved_capture.h).
  std::set<std::string> names() const {
    std::set<std::string> out;
    for (const std::string& name : allNames()) {
      if (!name.starts_with(".")) out.insert(name);
    }
    return out;
  }
  std::set<std::string> allNames() const {
    std::set<std::string> out;
    for (const auto& entry : std::filesystem::directory_iterator(path())) {
      out.insert(entry.path().filename().string());
    }
    return out;
  }
};

using testsupport::waitUntil;

}  // namespace capture::testing

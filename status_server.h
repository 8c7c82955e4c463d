#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "capture/reconciler.h"
#include "k8s/event_recorder.h"
#include "k8s/pod_informer.h"

namespace httplib {
class Server;
}

// The controller's HTTP endpoint, and the formats it serves:
//   /healthz   liveness: the process answers and its capture worker makes progress
//   /readyz    readiness: the Pod list is synced, the container runtime answers, the worker runs
//   /metrics   Prometheus text format, every name prefixed capture_controller_
//   /captures  the active captures as JSON, with every file on disk and its size now; what
//              `capture-controller captures` prints as a table
namespace status {

// "host:port" (":port" leaves the host empty: every address, IPv6 and IPv4; IPv6 as
// "[::1]:port"). Port 0: an ephemeral one.
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> parseHostPort(const std::string& address);

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

// One scrape's worth of counters, gathered from the components.
struct MetricsSnapshot {
  capture::CaptureStats captures;
  k8s::PodInformerStats informer;
  k8s::EventRecorderStats events;
  bool informer_synced = false;
  bool runtime_reachable = false;
  std::string cri_text;  // cri::RpcStats::prometheusText("capture_controller_cri")
};
std::string prometheusText(const MetricsSnapshot& metrics);

// The /captures document: {"captures": [ capture::toJson(status) + "filesOnDisk":
// [{"path", "bytes"}] ]}, the files listed from the capture directory as they are now.
nlohmann::json capturesJson(const std::vector<capture::CaptureStatus>& captures);
// The /captures document as a table for operators (POD, STATE, SANDBOX, NETNS, PID, RESTARTS,
// FILES), one line per capture, then the last error of each capture that has one. Malformed
// input is an error, never an exception.
absl::StatusOr<std::string> capturesTable(const nlohmann::json& document);

// Where the endpoint reads what it shows, on each request from its own threads: each source
// must be thread-safe. An unset source reads as "not yet": not synced, not reachable, no worker.
struct StatusSources {
  std::function<bool()> informer_synced = {};
  std::function<RuntimeHealth()> runtime = {};
  // When the capture worker last went round its loop; nullopt before it started.
  std::function<std::optional<std::chrono::steady_clock::time_point>()> worker_pass = {};
  std::function<std::vector<capture::CaptureStatus>()> captures = {};
  std::function<MetricsSnapshot()> metrics = {};
};

struct StatusServerOptions {
  // /healthz fails once the worker has been silent this long, and the kubelet restarting the
  // controller is the cure. An idle worker passes once per resync period and one pass is bounded
  // by CRI deadlines and tcpdump's stop grace: the binary allows the resync period plus a minute.
  std::chrono::milliseconds max_worker_silence{60'000};
};

// The HTTP server (cpp-httplib) on its own threads.
class StatusServer {
 public:
  explicit StatusServer(StatusSources sources, StatusServerOptions options = {});
  ~StatusServer();  // stop()
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds and starts serving; returns the bound address ("127.0.0.1:41377" for port 0).
  absl::StatusOr<std::string> start(const HostPort& address);
  void stop();
  int port() const { return port_; }

 private:
  void installRoutes();

  const StatusSources sources_;
  const StatusServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;
};

}  // namespace status

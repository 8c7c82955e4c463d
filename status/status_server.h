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
#include "status/metrics.h"
#include "status/runtime_check.h"

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

#include "status_server.h"

#include <glog/logging.h>
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "capture/capture_files.h"

namespace status {
namespace {

// Enough for the kubelet's two probes, a scrape and a `captures` command at once.
constexpr int kServerThreads = 4;

}  // namespace

absl::StatusOr<HostPort> parseHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError("not host:port or :port: " + address);
  }
  HostPort parsed;
  parsed.host = address.substr(0, colon);
  if (parsed.host.size() >= 2 && parsed.host.front() == '[' && parsed.host.back() == ']') {
    parsed.host = parsed.host.substr(1, parsed.host.size() - 2);
  } else if (parsed.host.find(':') != std::string::npos) {
    return absl::InvalidArgumentError("write an IPv6 address in brackets, as [::1]:8080: " +
                                      address);
  }
  const std::string port = address.substr(colon + 1);
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), parsed.port);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || parsed.port < 0 ||
      parsed.port > 65535) {
    return absl::InvalidArgumentError("not a port number (0 to 65535): " + address);
  }
  return parsed;
}

// ---- RuntimeCheck ----

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

// ---- /metrics ----

std::string prometheusText(const MetricsSnapshot& m) {
  struct Family {
    const char* name;  // after the capture_controller_ prefix
    const char* type;
    const char* help;
    uint64_t value;
  };
  const Family families[] = {
      {"captures_active", "gauge", "Captures whose tcpdump runs now.",
       static_cast<uint64_t>(std::max<int64_t>(0, m.captures.active))},
      {"captures_started_total", "counter", "tcpdump launches, restarts included.",
       m.captures.started},
      {"captures_stopped_total", "counter", "Captures ended and their files deleted.",
       m.captures.stopped},
      {"captures_failed_total", "counter",
       "Failed launches, failed sandbox look-ups and tcpdump exits nobody asked for.",
       m.captures.failed},
      {"capture_restarts_total", "counter",
       "Launches that replaced an earlier tcpdump of the same capture.", m.captures.restarts},
      {"informer_synced", "gauge", "1 once the first list of this node's Pods arrived.",
       m.informer_synced ? 1u : 0u},
      {"pod_watch_reconnects_total", "counter", "Pod watches opened after the first.",
       m.informer.watch_reconnects},
      {"pod_relists_total", "counter",
       "Pod lists after the first (410 Gone, or a watch stream that could not be trusted).",
       m.informer.relists},
      {"pod_watch_events_total", "counter",
       "Pod watch events received (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR).",
       m.informer.events_received},
      {"events_posted_total", "counter", "Kubernetes Events created.", m.events.created},
      {"events_aggregated_total", "counter",
       "Repeats of a recent Event, counted on it instead of posted anew.", m.events.aggregated},
      {"events_dropped_total", "counter", "Events dropped because the queue was full.",
       m.events.dropped_queue_full},
      {"events_failed_total", "counter",
       "Events given up after retries, or refused by the API server.", m.events.failed},
      {"runtime_reachable", "gauge",
       "1 when the container runtime answered its last CRI Version call.",
       m.runtime_reachable ? 1u : 0u},
  };
  std::ostringstream out;
  for (const Family& f : families) {
    out << "# HELP capture_controller_" << f.name << " " << f.help << "\n"
        << "# TYPE capture_controller_" << f.name << " " << f.type << "\n"
        << "capture_controller_" << f.name << " " << f.value << "\n";
  }
  out << m.cri_text;
  return out.str();
}

// ---- /captures ----

nlohmann::json capturesJson(const std::vector<capture::CaptureStatus>& captures) {
  // One listing per directory (every capture shares --capture-dir), then one stat per file.
  std::map<std::string, std::vector<std::string>> names_by_dir;
  nlohmann::json list = nlohmann::json::array();
  for (const capture::CaptureStatus& status : captures) {
    const std::filesystem::path path(status.file_path);
    const std::string dir = path.parent_path().string();
    auto listed = names_by_dir.find(dir);
    if (listed == names_by_dir.end()) {
      auto names = capture::CaptureFiles(dir).allCaptureFiles();
      if (!names.ok()) LOG(WARNING) << "/captures: " << names.status();
      listed =
          names_by_dir.emplace(dir, names.ok() ? *std::move(names) : std::vector<std::string>{})
              .first;
    }
    nlohmann::json files = nlohmann::json::array();
    for (const std::string& name : listed->second) {
      if (!capture::isFileOfCapture(path.filename().string(), name)) continue;
      std::error_code error;
      const std::string file = (path.parent_path() / name).string();
      const auto bytes = std::filesystem::file_size(file, error);
      if (error) continue;  // rotated away since the listing
      files.push_back({{"path", file}, {"bytes", bytes}});
    }
    nlohmann::json entry = capture::toJson(status);
    entry["filesOnDisk"] = std::move(files);
    list.push_back(std::move(entry));
  }
  return {{"captures", std::move(list)}};
}

namespace {

std::string humanBytes(uint64_t bytes) {
  // tcpdump's -C counts in 10^6 bytes, so do the sizes here.
  if (bytes < 1000) return absl::StrCat(bytes, " B");
  if (bytes < 1000 * 1000) return absl::StrFormat("%.1f kB", bytes / 1e3);
  return absl::StrFormat("%.1f MB", bytes / 1e6);
}

// crictl's short form of a sandbox ID.
std::string shortId(const std::string& id) { return id.substr(0, 13); }

std::string orDash(std::string s) { return s.empty() ? "-" : s; }

}  // namespace

absl::StatusOr<std::string> capturesTable(const nlohmann::json& document) {
  try {
    const std::vector<std::string> header = {"POD", "STATE",    "SANDBOX", "NETNS",
                                             "PID", "RESTARTS", "FILES"};
    std::vector<std::vector<std::string>> rows = {header};
    std::vector<std::string> errors;
    for (const nlohmann::json& c : document.at("captures")) {
      const std::string pod =
          c.at("podNamespace").get<std::string>() + "/" + c.at("podName").get<std::string>();
      std::string files;
      for (const nlohmann::json& f : c.at("filesOnDisk")) {
        const std::string path = f.at("path").get<std::string>();
        absl::StrAppend(&files, files.empty() ? "" : ", ",
                        std::filesystem::path(path).filename().string(), " (",
                        humanBytes(f.at("bytes").get<uint64_t>()), ")");
      }
      const int64_t pid = c.at("pid").get<int64_t>();
      rows.push_back({pod, c.at("state").get<std::string>(),
                      orDash(shortId(c.at("sandboxId").get<std::string>())),
                      orDash(c.at("netnsPath").get<std::string>()),
                      pid > 0 ? std::to_string(pid) : "-",
                      std::to_string(c.at("restarts").get<uint64_t>()), orDash(files)});
      const std::string error = c.at("lastError").get<std::string>();
      if (!error.empty()) errors.push_back(pod + ": last error: " + error);
    }
    if (rows.size() == 1) return std::string("no capture is active on this node\n");
    std::vector<size_t> widths(header.size(), 0);
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    std::string table;
    for (const auto& row : rows) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
      }
      absl::StrAppend(&table, line, "\n");
    }
    for (const std::string& error : errors) absl::StrAppend(&table, error, "\n");
    return table;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not a /captures document: ", e.what()));
  }
}

// ---- the server ----

StatusServer::StatusServer(StatusSources sources, StatusServerOptions options)
    : sources_(std::move(sources)), options_(options) {}

StatusServer::~StatusServer() { stop(); }

absl::StatusOr<std::string> StatusServer::start(const HostPort& address) {
  if (server_) return absl::FailedPreconditionError("the status server starts once");
  server_ = std::make_unique<httplib::Server>();
  server_->new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  // Probes and scrapes are one request each; do not let an idle keep-alive hold a thread.
  server_->set_keep_alive_timeout(1);
  server_->set_read_timeout(5);
  server_->set_write_timeout(5);
  // httplib's default adds SO_REUSEPORT, which lets a second server bind the same port and
  // silently take half of the requests: keep only SO_REUSEADDR (a restart rebinds at once).
  // An IPv6 socket also takes IPv4 (dual stack) whatever net.ipv6.bindv6only says; on an IPv4
  // socket that option fails, harmlessly.
  server_->set_socket_options([](int socket) {
    const int on = 1, off = 0;
    ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    ::setsockopt(socket, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
  });
  installRoutes();
  const auto bind = [this, &address](const std::string& host) {
    return address.port == 0 ? server_->bind_to_any_port(host)
                             : (server_->bind_to_port(host, address.port) ? address.port : -1);
  };
  // No host: every address of the Pod, IPv6 and IPv4 alike (the kubelet probes the Pod's
  // primary IP, which is IPv6 on an IPv6 or IPv6-first cluster); IPv4 only where the kernel
  // has no IPv6.
  std::string host = address.host;
  if (host.empty()) {
    host = "::";
    port_ = bind(host);
    if (port_ < 0) {
      host = "0.0.0.0";
      port_ = bind(host);
    }
  } else {
    port_ = bind(host);
  }
  const std::string shown =
      host.find(':') != std::string::npos ? absl::StrCat("[", host, "]") : host;
  if (port_ < 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", shown, ":", address.port, ": ", std::strerror(errno)));
  }
  httplib::Server* server = server_.get();
  listener_ = std::thread([server] { server->listen_after_bind(); });
  // stop() does nothing until the accept loop runs: do not hand out a server before it does.
  while (!server->is_running()) std::this_thread::yield();
  return absl::StrCat(shown, ":", port_);
}

void StatusServer::stop() {
  if (!server_) return;
  server_->stop();
  if (listener_.joinable()) listener_.join();
  server_.reset();
}

void StatusServer::installRoutes() {
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& response) {
    const auto pass = sources_.worker_pass ? sources_.worker_pass() : std::nullopt;
    const auto silence = pass ? std::chrono::steady_clock::now() - *pass
                              : std::chrono::steady_clock::duration::zero();
    if (silence > options_.max_worker_silence) {
      response.status = 500;
      response.set_content(
          absl::StrCat("the capture worker has made no progress for ",
                       std::chrono::duration_cast<std::chrono::seconds>(silence).count(), " s\n"),
          "text/plain");
      return;
    }
    response.set_content(pass ? "ok\n" : "ok (starting)\n", "text/plain");
  });

  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    // Kubernetes' own /readyz format: one [+] or [-] line per check.
    const bool synced = sources_.informer_synced && sources_.informer_synced();
    const RuntimeHealth runtime = sources_.runtime ? sources_.runtime() : RuntimeHealth{};
    const bool worker = sources_.worker_pass && sources_.worker_pass().has_value();
    std::string body;
    const auto check = [&body](bool ok, const std::string& name, const std::string& why) {
      body += (ok ? "[+]" : "[-]") + name + (ok ? " ok\n" : " failed: " + why + "\n");
    };
    check(synced, "pod-informer", "the first list of this node's Pods has not arrived");
    check(runtime.reachable, "container-runtime",
          runtime.detail.empty() ? "not checked yet" : runtime.detail);
    check(worker, "capture-worker", "not started");
    const bool ready = synced && runtime.reachable && worker;
    absl::StrAppend(&body, ready ? "readyz check passed\n" : "readyz check failed\n");
    response.status = ready ? 200 : 503;
    response.set_content(body, "text/plain");
  });

  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    const MetricsSnapshot metrics = sources_.metrics ? sources_.metrics() : MetricsSnapshot{};
    response.set_content(prometheusText(metrics), "text/plain; version=0.0.4; charset=utf-8");
  });

  server_->Get("/captures", [this](const httplib::Request&, httplib::Response& response) {
    const auto captures =
        sources_.captures ? sources_.captures() : std::vector<capture::CaptureStatus>{};
    response.set_content(capturesJson(captures).dump(2) + "\n", "application/json");
  });
}

}  // namespace status

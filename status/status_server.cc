#include "status/status_server.h"

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
#include "status/captures_view.h"

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

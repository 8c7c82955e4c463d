#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "k8s/bearer_token.h"
#include "k8s/kube_config.h"

namespace k8s {

// Lets one thread abort another thread's HTTP call at once, even in the middle of an idle
// watch: cancel() sets a flag that curl's progress callback checks and wakes the call's poll.
// One-shot: once cancelled, every later call through it fails with kCancelled.
class Cancellation {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class HttpClient;
  void attach(void* multi_handle);
  void detach(void* multi_handle);

  std::atomic<bool> cancelled_{false};
  std::mutex mutex_;
  std::vector<void*> waiting_;
};

struct HttpResponse {
  long status = 0;
  std::string body;  // for stream(): only the body of a non-2xx answer
};

// An API-server client on one libcurl handle: TLS with the config's CA, client certificate and
// bearer token, HTTP/1.1 (one TCP connection per client, so that a dead connection only ever
// takes one stream with it), kept alive between calls. One call at a time: give each thread its
// own HttpClient.
//
// A transport failure (connect, TLS, timeout, reset, cancel) is an error Status; any HTTP answer,
// 4xx and 5xx included, is an HttpResponse, which apiError() turns into a Status.
class HttpClient {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{10'000};
    std::chrono::milliseconds request_timeout{30'000};
    // TCP keepalive probes find a peer that vanished without a FIN during a long idle watch:
    // after idle + net.ipv4.tcp_keepalive_probes (9 by default) x interval, about 120 s, since
    // libcurl before 8.9 cannot set TCP_KEEPCNT.
    std::chrono::seconds keepalive_idle{30};
    std::chrono::seconds keepalive_interval{10};
    // How long a call sleeps in poll() when nothing happens, as a safety net: data, curl's own
    // timers and Cancellation::cancel() all wake it at once.
    std::chrono::milliseconds idle_poll{1'000};
    std::string user_agent = "capture-controller/0.1";
    std::chrono::steady_clock::duration token_refresh = std::chrono::minutes(1);
  };

  explicit HttpClient(const ClusterConfig& config);
  HttpClient(const ClusterConfig& config, Options options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `path` starts with '/' and carries the query. A 401 makes the token file be re-read and the
  // call be retried once.
  absl::StatusOr<HttpResponse> request(std::string_view method, std::string_view path,
                                       std::string_view body = {},
                                       std::string_view content_type = {},
                                       Cancellation* cancel = nullptr);

  // A GET whose 2xx body goes to `on_data` as it arrives; returning false from it stops the
  // call (kAborted), and so does an exception from it (kInternal: it never unwinds through
  // libcurl's C frames). `timeout` bounds the whole call: for a watch, slightly above its
  // timeoutSeconds, so that a connection that died silently is given up.
  absl::StatusOr<HttpResponse> stream(std::string_view path,
                                      const std::function<bool(std::string_view)>& on_data,
                                      std::chrono::milliseconds timeout, Cancellation* cancel);

 private:
  struct Call;
  absl::StatusOr<HttpResponse> perform(Call& call);

  const std::string server_;
  const Options options_;
  BearerToken token_;
  struct Handles;
  std::unique_ptr<Handles> handles_;
};

// The error a non-2xx answer stands for, with the message of its core/v1 Status body when it
// has one (kNotFound for 404, kAlreadyExists for 409, kUnauthenticated for 401, ...).
absl::Status apiError(const HttpResponse& response);

// Percent-encodes a query value (a field selector, a continue token).
std::string urlEncode(std::string_view value);

}  // namespace k8s

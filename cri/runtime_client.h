#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri-api/api.grpc.pb.h"
#include "cri-api/api.pb.h"
#include "cri/rpc_stats.h"

namespace cri {

inline constexpr char kDefaultEndpoint[] = "unix:///run/containerd/containerd.sock";

struct RuntimeClientOptions {
  // "unix:///path/to.sock", or a bare absolute path.
  std::string endpoint = kDefaultEndpoint;
  // Deadline of every call: a runtime that accepts the connection but does not answer (a frozen
  // containerd) costs at most this long, never a hang.
  std::chrono::milliseconds timeout{2000};
};

// The controller's CRI v1 client over one gRPC channel: it only reads (Version, ListPodSandbox,
// PodSandboxStatus); what the kubelet does (sandboxes, containers) is the tests' own client,
// tests/lab/kubelet_client.h. Thread-safe.
//
// Errors: a runtime that cannot be reached (socket absent, connection refused) or that does not
// answer within the deadline yields ResolveFailure::kRuntimeUnavailable, with the endpoint in the
// message; any other gRPC error keeps its code (NOT_FOUND → absl NotFound, ...).
class RuntimeClient {
 public:
  explicit RuntimeClient(RuntimeClientOptions options = {});

  const std::string& endpoint() const { return endpoint_; }
  const RpcStats& stats() const { return stats_; }

  absl::StatusOr<runtime::v1::VersionResponse> version();
  absl::StatusOr<runtime::v1::ListPodSandboxResponse> listPodSandbox(
      const runtime::v1::PodSandboxFilter& filter);
  absl::StatusOr<runtime::v1::PodSandboxStatusResponse> podSandboxStatus(std::string_view id,
                                                                         bool verbose);

 private:
  template <typename Response, typename Invoke>
  absl::StatusOr<Response> call(std::string_view method, Invoke invoke);

  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  RpcStats stats_;
};

}  // namespace cri

#include "cri/runtime_client.h"

#include <glog/logging.h>
#include <grpcpp/grpcpp.h>

#include "cri/sandbox_resolver.h"

namespace cri {
namespace {

std::string normalizeEndpoint(const std::string& endpoint) {
  return endpoint.starts_with("/") ? "unix://" + endpoint : endpoint;
}

std::shared_ptr<grpc::Channel> dial(const std::string& endpoint) {
  grpc::ChannelArguments args;
  // gRPC's default reconnect backoff grows to 120 s: after a containerd restart the controller
  // would keep failing long after the socket is back. Cap it so the next resync reconnects.
  // (Not GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect timeout, and a busy runtime
  // must not be given up on before the call's own deadline.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

}  // namespace

RuntimeClient::RuntimeClient(RuntimeClientOptions options)
    : endpoint_(normalizeEndpoint(options.endpoint)),
      timeout_(options.timeout),
      channel_(dial(endpoint_)),
      runtime_(runtime::v1::RuntimeService::NewStub(channel_)) {}

template <typename Response, typename Invoke>
absl::StatusOr<Response> RuntimeClient::call(std::string_view method, Invoke invoke) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout_);
  Response response;
  const auto start = std::chrono::steady_clock::now();
  const grpc::Status status = invoke(&context, &response);
  stats_.record(method, std::chrono::steady_clock::now() - start, status.ok());
  if (status.ok()) return response;

  VLOG(1) << "CRI " << method << " to " << endpoint_ << ": " << status.error_code() << " "
          << status.error_message();
  const std::string what = "CRI " + std::string(method) + " to " + endpoint_;
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return resolveError(ResolveFailure::kRuntimeUnavailable,
                          what + " timed out after " + std::to_string(timeout_.count()) + "ms");
    case grpc::StatusCode::UNAVAILABLE:
      return resolveError(ResolveFailure::kRuntimeUnavailable,
                          what + ": runtime unavailable: " + status.error_message());
    default:
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          what + ": " + status.error_message());
  }
}

absl::StatusOr<runtime::v1::VersionResponse> RuntimeClient::version() {
  runtime::v1::VersionRequest request;
  request.set_version("0.1.0");  // what the kubelet sends; runtimes answer regardless
  return call<runtime::v1::VersionResponse>("Version", [&](auto* context, auto* response) {
    return runtime_->Version(context, request, response);
  });
}

absl::StatusOr<runtime::v1::ListPodSandboxResponse> RuntimeClient::listPodSandbox(
    const runtime::v1::PodSandboxFilter& filter) {
  runtime::v1::ListPodSandboxRequest request;
  *request.mutable_filter() = filter;
  return call<runtime::v1::ListPodSandboxResponse>(
      "ListPodSandbox", [&](auto* context, auto* response) {
        return runtime_->ListPodSandbox(context, request, response);
      });
}

absl::StatusOr<runtime::v1::PodSandboxStatusResponse> RuntimeClient::podSandboxStatus(
    std::string_view id, bool verbose) {
  runtime::v1::PodSandboxStatusRequest request;
  request.set_pod_sandbox_id(std::string(id));
  request.set_verbose(verbose);
  return call<runtime::v1::PodSandboxStatusResponse>(
      "PodSandboxStatus", [&](auto* context, auto* response) {
        return runtime_->PodSandboxStatus(context, request, response);
      });
}

}  // namespace cri

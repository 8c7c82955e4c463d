#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri-api/api.grpc.pb.h"
#include "cri-api/api.pb.h"

namespace lab {

// The CRI calls the kubelet makes and the controller never does: sandbox and container
// lifecycle, exec, the runtime's conditions, image lookups. Only the tests play the kubelet, so
// these live here, and the controller's cri::RuntimeClient only reads. Thread-safe.
// Every call has the deadline given at construction; a gRPC error becomes an absl::Status of
// the same code whose message names the call.
class KubeletClient {
 public:
  // `endpoint`: unix:///path.
  KubeletClient(const std::string& endpoint, std::chrono::milliseconds timeout);

  absl::StatusOr<runtime::v1::VersionResponse> version();
  absl::StatusOr<runtime::v1::StatusResponse> status();

  absl::StatusOr<std::string> runPodSandbox(const runtime::v1::PodSandboxConfig& config);
  absl::Status stopPodSandbox(std::string_view id);
  absl::Status removePodSandbox(std::string_view id);
  absl::StatusOr<runtime::v1::PodSandboxStatusResponse> podSandboxStatus(std::string_view id);
  absl::StatusOr<runtime::v1::ListPodSandboxResponse> listPodSandbox();

  absl::StatusOr<std::string> createContainer(std::string_view sandbox_id,
                                              const runtime::v1::ContainerConfig& config,
                                              const runtime::v1::PodSandboxConfig& sandbox);
  absl::Status startContainer(std::string_view id);
  // Sends the image's stop signal, then SIGKILL after `grace`; returns once it exited.
  absl::Status stopContainer(std::string_view id, std::chrono::seconds grace);
  absl::Status removeContainer(std::string_view id);
  absl::StatusOr<runtime::v1::ContainerStatus> containerStatus(std::string_view id);
  // Runs `cmd` in the container and waits for it (at most `timeout`).
  absl::StatusOr<runtime::v1::ExecSyncResponse> execSync(std::string_view id,
                                                         const std::vector<std::string>& cmd,
                                                         std::chrono::seconds timeout);

  // An unset `image` in the answer means the runtime does not have it.
  absl::StatusOr<runtime::v1::ImageStatusResponse> imageStatus(std::string_view image);

 private:
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> call(
      Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      std::string_view name, const Request& request, std::chrono::milliseconds extra = {});

  std::string endpoint_;
  std::chrono::milliseconds timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<runtime::v1::ImageService::Stub> images_;
};

}  // namespace lab

#include "tests/lab/kubelet_client.h"

#include "absl/strings/str_cat.h"

namespace lab {

using runtime::v1::RuntimeService;
using Stub = RuntimeService::Stub;
using ImageStub = runtime::v1::ImageService::Stub;

KubeletClient::KubeletClient(const std::string& endpoint, std::chrono::milliseconds timeout)
    : endpoint_(endpoint),
      timeout_(timeout),
      channel_(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials())),
      runtime_(RuntimeService::NewStub(channel_)),
      images_(runtime::v1::ImageService::NewStub(channel_)) {}

// `extra`: added to the deadline, for calls that wait by design (a container's stop, an exec).
template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> KubeletClient::call(
    Stub& stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    std::string_view name, const Request& request, std::chrono::milliseconds extra) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout_ + extra);
  Response response;
  const grpc::Status status = (stub.*method)(&context, request, &response);
  if (status.ok()) return response;
  return absl::Status(
      static_cast<absl::StatusCode>(status.error_code()),
      absl::StrCat("CRI ", std::string(name), " to ", endpoint_, ": ", status.error_message()));
}

absl::StatusOr<runtime::v1::VersionResponse> KubeletClient::version() {
  runtime::v1::VersionRequest request;
  return call(*runtime_, &Stub::Version, "Version", request);
}

absl::StatusOr<runtime::v1::StatusResponse> KubeletClient::status() {
  runtime::v1::StatusRequest request;
  return call(*runtime_, &Stub::Status, "Status", request);
}

absl::StatusOr<std::string> KubeletClient::runPodSandbox(
    const runtime::v1::PodSandboxConfig& config) {
  runtime::v1::RunPodSandboxRequest request;
  *request.mutable_config() = config;
  auto response = call(*runtime_, &Stub::RunPodSandbox, "RunPodSandbox", request);
  if (!response.ok()) return response.status();
  return response->pod_sandbox_id();
}

absl::Status KubeletClient::stopPodSandbox(std::string_view id) {
  runtime::v1::StopPodSandboxRequest request;
  request.set_pod_sandbox_id(std::string(id));
  return call(*runtime_, &Stub::StopPodSandbox, "StopPodSandbox", request).status();
}

absl::Status KubeletClient::removePodSandbox(std::string_view id) {
  runtime::v1::RemovePodSandboxRequest request;
  request.set_pod_sandbox_id(std::string(id));
  return call(*runtime_, &Stub::RemovePodSandbox, "RemovePodSandbox", request).status();
}

absl::StatusOr<runtime::v1::PodSandboxStatusResponse> KubeletClient::podSandboxStatus(
    std::string_view id) {
  runtime::v1::PodSandboxStatusRequest request;
  request.set_pod_sandbox_id(std::string(id));
  return call(*runtime_, &Stub::PodSandboxStatus, "PodSandboxStatus", request);
}

absl::StatusOr<runtime::v1::ListPodSandboxResponse> KubeletClient::listPodSandbox() {
  runtime::v1::ListPodSandboxRequest request;
  return call(*runtime_, &Stub::ListPodSandbox, "ListPodSandbox", request);
}

absl::StatusOr<std::string> KubeletClient::createContainer(
    std::string_view sandbox_id, const runtime::v1::ContainerConfig& config,
    const runtime::v1::PodSandboxConfig& sandbox) {
  runtime::v1::CreateContainerRequest request;
  request.set_pod_sandbox_id(std::string(sandbox_id));
  *request.mutable_config() = config;
  *request.mutable_sandbox_config() = sandbox;
  auto response = call(*runtime_, &Stub::CreateContainer, "CreateContainer", request);
  if (!response.ok()) return response.status();
  return response->container_id();
}

absl::Status KubeletClient::startContainer(std::string_view id) {
  runtime::v1::StartContainerRequest request;
  request.set_container_id(std::string(id));
  return call(*runtime_, &Stub::StartContainer, "StartContainer", request).status();
}

absl::Status KubeletClient::stopContainer(std::string_view id, std::chrono::seconds grace) {
  runtime::v1::StopContainerRequest request;
  request.set_container_id(std::string(id));
  request.set_timeout(grace.count());
  return call(*runtime_, &Stub::StopContainer, "StopContainer", request, grace).status();
}

absl::Status KubeletClient::removeContainer(std::string_view id) {
  runtime::v1::RemoveContainerRequest request;
  request.set_container_id(std::string(id));
  return call(*runtime_, &Stub::RemoveContainer, "RemoveContainer", request).status();
}

absl::StatusOr<runtime::v1::ContainerStatus> KubeletClient::containerStatus(std::string_view id) {
  runtime::v1::ContainerStatusRequest request;
  request.set_container_id(std::string(id));
  auto response = call(*runtime_, &Stub::ContainerStatus, "ContainerStatus", request);
  if (!response.ok()) return response.status();
  return response->status();
}

absl::StatusOr<runtime::v1::ExecSyncResponse> KubeletClient::execSync(
    std::string_view id, const std::vector<std::string>& cmd, std::chrono::seconds timeout) {
  runtime::v1::ExecSyncRequest request;
  request.set_container_id(std::string(id));
  for (const std::string& arg : cmd) request.add_cmd(arg);
  request.set_timeout(timeout.count());
  return call(*runtime_, &Stub::ExecSync, "ExecSync", request, timeout);
}

absl::StatusOr<runtime::v1::ImageStatusResponse> KubeletClient::imageStatus(
    std::string_view image) {
  runtime::v1::ImageStatusRequest request;
  request.mutable_image()->set_image(std::string(image));
  return call(*images_, &ImageStub::ImageStatus, "ImageStatus", request);
}

}  // namespace lab

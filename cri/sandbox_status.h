#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "cri-api/api.pb.h"
#include "cri/sandbox_info.h"

// Pure functions from CRI answers to what the capture engine needs: no I/O, so every case
// (host network, closed netns, malformed info, several sandboxes per pod) is unit-tested
// without a runtime. CriSandboxResolver calls them on what containerd returns.
namespace cri {

// The newest (created_at) SANDBOX_READY sandbox among `items`. `pod` names what was looked up
// (e.g. "pod uid 1234") in the messages. Errors: kNoSandbox when `items` is empty;
// kNoReadySandbox when none is READY, listing what was found.
absl::StatusOr<const runtime::v1::PodSandbox*> newestReadySandbox(
    const runtime::v1::ListPodSandboxResponse& list, std::string_view pod);

// Reads a verbose PodSandboxStatus answer. containerd's `info["info"]` is a JSON document (a
// string); inside it the netns path is runtimeSpec.linux.namespaces[type=network].path, the
// pause process's host pid is `pid`, and `netNamespaceClosed` tells that the netns is gone.
// Errors: kHostNetwork (network NamespaceMode NODE, or no network namespace with a path: the pod
// has nothing of its own to capture in), kNetnsClosed, kMalformedStatus (no status, no verbose
// info, JSON that does not parse or has the wrong shape). The state is reported, not checked.
absl::StatusOr<SandboxInfo> sandboxInfoFromStatus(
    const runtime::v1::PodSandboxStatusResponse& response);

}  // namespace cri

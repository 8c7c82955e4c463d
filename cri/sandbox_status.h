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

// Reads a verbose PodSandboxStatus answer. The runtime's `info["info"]` is a JSON document (a
// string) whose shape depends on the runtime; the network namespace is, in this order:
//   1. runtimeSpec.linux.namespaces[type=network].path (containerd 1.x and 2.x, CRI-O with or
//      without its infra container);
//   2. sandboxMetadata.Metadata.NetNSPath (containerd 2.x, which sends a null runtimeSpec for a
//      sandbox without a container, not fully created, or that its sandbox controller no longer
//      knows; with the shim killed, 2.1.9 still sends runtimeSpec, and pid 0);
//   3. the sandbox process's /proc/<pid>/ns/net: then netns_path is empty and pid > 0, and
//      whoever opens it checks that it is visible and the sandbox's own (proc::openSandboxNetns).
// `pid` is reported whenever given; `netNamespaceClosed` (containerd) tells that the netns is
// gone. Errors: kHostNetwork (status NamespaceMode NODE, a config in the info asking for NODE,
// or a runtimeSpec that lists namespaces but no network one), kNetnsClosed, kMalformedStatus
// (no status, no verbose info, JSON that does not parse, a field of the wrong type, or no
// source at all: the message names each field that was looked for). The state is reported, not
// checked.
absl::StatusOr<SandboxInfo> sandboxInfoFromStatus(
    const runtime::v1::PodSandboxStatusResponse& response);

}  // namespace cri

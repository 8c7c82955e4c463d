#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "cri/runtime_client.h"
#include "cri/sandbox_resolver.h"

namespace cri {

// The real SandboxResolver: two CRI calls per resolve, each under the client's deadline.
//   1. ListPodSandbox with a label selector and no state filter, so that "no sandbox at all"
//      (kNoSandbox) and "sandboxes, none READY" (kNoReadySandbox) stay distinct;
//   2. PodSandboxStatus(verbose) of the newest READY one, for its netns path and pid.
// The second call is skipped for a sandbox already resolved: a sandbox's netns, pid and IP are
// fixed for its life, one that stopped shows as NOTREADY in the list, and a netns removed under
// a READY one fails the same nsfs check that containerd's netNamespaceClosed makes, sending
// the resolve back to containerd. A sandbox the runtime reports without a netns path, only with
// its process's pid, resolves only when /proc/<pid>/ns/net is visible and that process is the
// sandbox's (proc::openSandboxNetns), checked again on every cache hit; otherwise kOther, saying
// why. That verbose call is most of a resolve's cost (containerd encodes the whole OCI spec as
// JSON): see bench_cri_resolve. Thread-safe.
class CriSandboxResolver : public SandboxResolver {
 public:
  explicit CriSandboxResolver(RuntimeClient& client) : client_(client) {}

  // By the kubelet's label io.kubernetes.pod.uid.
  absl::StatusOr<SandboxInfo> resolve(std::string_view pod_uid) override;
  // By the kubelet's labels io.kubernetes.pod.namespace and io.kubernetes.pod.name: the newest
  // READY sandbox of any pod that had this name (for operators, who know names, not UIDs).
  absl::StatusOr<SandboxInfo> resolveByName(std::string_view pod_namespace,
                                            std::string_view pod_name);
  // One unfiltered ListPodSandbox. Also forgets the cached sandboxes it no longer lists, so the
  // cache holds at most the node's live sandboxes.
  absl::StatusOr<SandboxSnapshot> snapshot() override;
  // One unfiltered ListPodSandbox for all of them, then what resolve() does for each.
  std::vector<absl::StatusOr<SandboxInfo>> resolveAll(
      const std::vector<std::string>& pod_uids) override;

 private:
  absl::StatusOr<SandboxInfo> resolveFiltered(const runtime::v1::PodSandboxFilter& filter,
                                              std::string_view pod);
  // The newest READY sandbox of `list` (one pod's), from the cache or its verbose status.
  absl::StatusOr<SandboxInfo> resolveIn(const runtime::v1::ListPodSandboxResponse& list,
                                        std::string_view pod);

  RuntimeClient& client_;
  std::mutex mu_;
  std::unordered_map<std::string, SandboxInfo> by_sandbox_id_;  // READY when resolved
};

}  // namespace cri

#include "cri/sandbox_info.h"

namespace cri {

const char* toString(SandboxState state) {
  return state == SandboxState::kReady ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
}

nlohmann::json toJson(const SandboxInfo& info) {
  // Field names follow crictl inspectp where it has one, so the two can be compared by eye.
  return {
      {"id", info.id},
      {"state", toString(info.state)},
      {"createdAt", info.created_at_ns},
      {"attempt", info.attempt},
      {"podName", info.pod_name},
      {"podNamespace", info.pod_namespace},
      {"podUid", info.pod_uid},
      {"netnsPath", info.netns_path},
      {"pid", info.pid},
      {"podIp", info.pod_ip},
  };
}

}  // namespace cri

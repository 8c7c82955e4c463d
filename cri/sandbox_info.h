#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace cri {

enum class SandboxState { kReady, kNotReady };

// What the container runtime knows of one pod sandbox: enough to enter its network
// namespace and to let an operator hold it next to `crictl inspectp <id>`.
struct SandboxInfo {
  std::string id;
  SandboxState state = SandboxState::kNotReady;
  int64_t created_at_ns = 0;  // CRI created_at: nanoseconds since the Unix epoch
  uint32_t attempt = 0;       // kubelet's restart counter for this pod's sandbox
  std::string pod_name;
  std::string pod_namespace;
  std::string pod_uid;
  std::string netns_path;  // e.g. /var/run/netns/cni-<uuid>
  int64_t pid = 0;         // host pid of the sandbox's pause process; 0 when unknown
  std::string pod_ip;      // empty when the runtime reports none

  bool operator==(const SandboxInfo&) const = default;
};

inline const char* toString(SandboxState state) {
  return state == SandboxState::kReady ? "SANDBOX_READY" : "SANDBOX_NOTREADY";
}

inline nlohmann::json toJson(const SandboxInfo& info) {
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

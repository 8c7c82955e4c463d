#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "proc/unique_fd.h"

namespace proc {

// Opens `path` (close-on-exec) and checks that it is a network namespace: a file of the nsfs
// filesystem (fstatfs f_type NSFS_MAGIC) whose ioctl NS_GET_NSTYPE answers CLONE_NEWNET. A
// path that merely exists is not enough: without its bind mount, /var/run/netns/cni-<id> is an
// empty placeholder file.
absl::StatusOr<UniqueFd> openNetworkNamespace(const std::string& path);

// Whether `path` is a network namespace now (openNetworkNamespace's check, the descriptor
// closed again): the check containerd makes for netNamespaceClosed.
inline bool isNetworkNamespace(const std::string& path) { return openNetworkNamespace(path).ok(); }

struct OpenedNetns {
  UniqueFd fd;
  std::string path;  // the path that was opened
};

// The sandbox's network namespace, as the CRI reported it (`netns_path`). Inside a DaemonSet
// that path is visible only through a host mount of /var/run/netns with mountPropagation
// HostToContainer; without it, falls back to /proc/<sandbox_pid>/ns/net (visible with
// hostPID), checked the same way, and taken only when /proc/<sandbox_pid>/cgroup names
// `sandbox_id`: that pid must be the sandbox's process, not whatever has that number in the
// controller's pid namespace. Fails with a message naming the missing mount otherwise.
absl::StatusOr<OpenedNetns> openSandboxNetns(const std::string& netns_path, int64_t sandbox_pid,
                                             const std::string& sandbox_id);

}  // namespace proc

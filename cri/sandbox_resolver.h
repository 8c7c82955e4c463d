#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri/sandbox_info.h"

namespace cri {

// Why a pod (by UID, or by namespace/name) did not resolve to a usable sandbox. Callers branch
// on it: some are transient (retry later), some are final for this pod (tell the user).
enum class ResolveFailure {
  kNone,                // the status is OK
  kRuntimeUnavailable,  // socket absent, connection refused, or the call's deadline expired
  kNoSandbox,           // the runtime has no sandbox with the labels looked up
  kNoReadySandbox,      // sandboxes exist, none is SANDBOX_READY (pending, or being replaced)
  kHostNetwork,         // the pod shares the node's network namespace: nothing of its own
  kNetnsClosed,         // the sandbox is READY but its network namespace is already gone
  kMalformedStatus,     // the runtime answered something we cannot parse
  kOther,               // any other runtime error
};

// Builds a Status that carries `failure`, so that failureOf() can read it back. Fakes use it
// too, so that code under test sees the same errors as from the real resolver.
absl::Status resolveError(ResolveFailure failure, std::string_view message);
ResolveFailure failureOf(const absl::Status& status);
const char* toString(ResolveFailure failure);

// Maps a pod UID to its live sandbox. The seam between the capture engine and the runtime:
// the real one speaks CRI to containerd, tests use a map they edit.
class SandboxResolver {
 public:
  virtual ~SandboxResolver() = default;
  // The newest READY sandbox of the pod, with its network namespace path.
  virtual absl::StatusOr<SandboxInfo> resolve(std::string_view pod_uid) = 0;
};

}  // namespace cri

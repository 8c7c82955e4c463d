#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
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

inline const char* toString(ResolveFailure failure) {
  switch (failure) {
    case ResolveFailure::kNone:
      return "None";
    case ResolveFailure::kRuntimeUnavailable:
      return "RuntimeUnavailable";
    case ResolveFailure::kNoSandbox:
      return "NoSandbox";
    case ResolveFailure::kNoReadySandbox:
      return "NoReadySandbox";
    case ResolveFailure::kHostNetwork:
      return "HostNetwork";
    case ResolveFailure::kNetnsClosed:
      return "NetnsClosed";
    case ResolveFailure::kMalformedStatus:
      return "MalformedStatus";
    case ResolveFailure::kOther:
      return "Other";
  }
  return "Other";
}

namespace internal {

// The payload key under which a Status carries its ResolveFailure.
inline constexpr char kFailureUrl[] = "type.capture-controller/cri.ResolveFailure";

inline absl::StatusCode codeFor(ResolveFailure failure) {
  switch (failure) {
    case ResolveFailure::kNone:
      return absl::StatusCode::kOk;
    case ResolveFailure::kRuntimeUnavailable:
      return absl::StatusCode::kUnavailable;
    case ResolveFailure::kNoSandbox:
      return absl::StatusCode::kNotFound;
    case ResolveFailure::kNoReadySandbox:
    case ResolveFailure::kNetnsClosed:
      return absl::StatusCode::kFailedPrecondition;
    case ResolveFailure::kHostNetwork:
      return absl::StatusCode::kInvalidArgument;
    case ResolveFailure::kMalformedStatus:
      return absl::StatusCode::kDataLoss;
    case ResolveFailure::kOther:
      return absl::StatusCode::kUnknown;
  }
  return absl::StatusCode::kUnknown;
}

}  // namespace internal

// Builds a Status that carries `failure`, so that failureOf() can read it back. Fakes use it
// too, so that code under test sees the same errors as from the real resolver.
inline absl::Status resolveError(ResolveFailure failure, std::string_view message) {
  if (failure == ResolveFailure::kNone) return absl::OkStatus();
  absl::Status status(internal::codeFor(failure), std::string(message));
  status.SetPayload(internal::kFailureUrl, absl::Cord(toString(failure)));
  return status;
}

inline ResolveFailure failureOf(const absl::Status& status) {
  if (status.ok()) return ResolveFailure::kNone;
  if (auto payload = status.GetPayload(internal::kFailureUrl)) {
    // Every failure between kNone and kOther, so that a new one cannot be forgotten here.
    for (int i = static_cast<int>(ResolveFailure::kNone) + 1;
         i < static_cast<int>(ResolveFailure::kOther); ++i) {
      const auto failure = static_cast<ResolveFailure>(i);
      if (*payload == toString(failure)) return failure;
    }
  }
  return ResolveFailure::kOther;
}

// Every sandbox of the node at one moment, by the pod UID the kubelet labels it with: what one
// unfiltered ListPodSandbox answers, as the kubelet's own relist reads it.
struct SandboxSnapshot {
  // Pod UID -> the ID of its newest READY sandbox, or "" when it has sandboxes but none READY.
  // A pod without any sandbox is absent.
  std::map<std::string, std::string> newest_ready;
};

// Maps a pod UID to its live sandbox. The seam between the capture policy and the runtime: the
// real one speaks CRI to containerd, tests use a map they edit. Calls block on the runtime, up
// to its deadline: the capture worker makes them off its own thread.
class SandboxResolver {
 public:
  virtual ~SandboxResolver() = default;
  // The newest READY sandbox of the pod, with its network namespace path.
  virtual absl::StatusOr<SandboxInfo> resolve(std::string_view pod_uid) = 0;
  // Every sandbox of the node, in one call: how a resync checks every capture's binding.
  virtual absl::StatusOr<SandboxSnapshot> snapshot() = 0;
  // resolve() of several pods at once, answered in the order asked. The real resolver lists
  // the node's sandboxes once for all of them, where resolve() lists once per pod: a burst of
  // new captures (a Deployment annotated, a controller restart) costs one list.
  virtual std::vector<absl::StatusOr<SandboxInfo>> resolveAll(
      const std::vector<std::string>& pod_uids) {
    std::vector<absl::StatusOr<SandboxInfo>> answers;
    answers.reserve(pod_uids.size());
    for (const std::string& uid : pod_uids) answers.push_back(resolve(uid));
    return answers;
  }
};

}  // namespace cri

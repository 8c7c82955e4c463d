#include "cri/sandbox_resolver.h"

#include <string>

#include "absl/strings/cord.h"

namespace cri {
namespace {

// The payload key under which a Status carries its ResolveFailure.
constexpr char kFailureUrl[] = "type.capture-controller/cri.ResolveFailure";

absl::StatusCode codeFor(ResolveFailure failure) {
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

}  // namespace

const char* toString(ResolveFailure failure) {
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

absl::Status resolveError(ResolveFailure failure, std::string_view message) {
  if (failure == ResolveFailure::kNone) return absl::OkStatus();
  absl::Status status(codeFor(failure), std::string(message));
  status.SetPayload(kFailureUrl, absl::Cord(toString(failure)));
  return status;
}

ResolveFailure failureOf(const absl::Status& status) {
  if (status.ok()) return ResolveFailure::kNone;
  if (auto payload = status.GetPayload(kFailureUrl)) {
    // Every failure between kNone and kOther, so that a new one cannot be forgotten here.
    for (int i = static_cast<int>(ResolveFailure::kNone) + 1;
         i < static_cast<int>(ResolveFailure::kOther); ++i) {
      const auto failure = static_cast<ResolveFailure>(i);
      if (*payload == toString(failure)) return failure;
    }
  }
  return ResolveFailure::kOther;
}

}  // namespace cri

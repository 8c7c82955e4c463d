#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "capture/reconciler.h"

namespace status {

// The /captures document: {"captures": [ capture::toJson(status) + "filesOnDisk":
// [{"path", "bytes"}] ]}, the files listed from the capture directory as they are now, in the
// order tcpdump wrote them (oldest first).
nlohmann::json capturesJson(const std::vector<capture::CaptureStatus>& captures);
// The /captures document as a table for operators (POD, STATE, SANDBOX, NETNS, PID, RESTARTS,
// FILES), one line per capture, then the last error of each capture that has one. Malformed
// input is an error, never an exception.
absl::StatusOr<std::string> capturesTable(const nlohmann::json& document);

}  // namespace status

#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace lab {

struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH) with no shell, collects stdout and stderr separately, and
// kills it if it outlives `timeout`. An error only when it cannot be run or timed out; a non-zero
// exit is a result, for the caller to judge. The child gets `env` ("NAME=value" entries) when
// given, else this process's environment.
absl::StatusOr<CommandResult> runCommand(
    const std::vector<std::string>& argv,
    std::chrono::milliseconds timeout = std::chrono::seconds(60),
    const std::optional<std::vector<std::string>>& env = std::nullopt);

// runCommand, and an error unless it exited 0; the error carries stderr. Returns stdout.
absl::StatusOr<std::string> runChecked(
    const std::vector<std::string>& argv,
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace lab

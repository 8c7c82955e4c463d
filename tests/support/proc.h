#pragma once

#include <sys/types.h>

#include <fstream>
#include <optional>
#include <string>

namespace testsupport {

// A process's state letter from /proc/<pid>/stat (R, S, D, T, t, Z, X...), or nullopt when the
// process is gone. "pid (comm) state ...": comm may hold spaces and parentheses, so the state
// is found after the last ')'.
inline std::optional<char> processState(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  const auto paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return std::nullopt;
  return stat[paren + 2];
}

// Running or sleeping: neither gone nor a zombie (this machine's PID 1 reaps orphans late, so a
// zombie must not count as alive).
inline bool processLives(pid_t pid) {
  const std::optional<char> state = processState(pid);
  return state && *state != 'Z' && *state != 'X';
}

}  // namespace testsupport

#pragma once

#include <string.h>

#include <string>

namespace proc {

// How a child ended, from waitid().
struct ExitStatus {
  int exit_code = -1;  // when it exited by itself
  int signal = 0;      // when a signal killed it

  // "exited with status 1", "killed by signal 9 (Killed)"
  std::string describe() const {
    if (signal != 0) {
      return "killed by signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
    }
    return "exited with status " + std::to_string(exit_code);
  }
  bool operator==(const ExitStatus&) const = default;
};

}  // namespace proc

#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace testsupport {

// tests/run-all.sh (and therefore CI) sets CAPTURE_CONTROLLER_REQUIRE_E2E=1: there a missing
// prerequisite is a failure, never a skip that would count as a pass.
inline bool e2eRequired() {
  const char* v = std::getenv("CAPTURE_CONTROLLER_REQUIRE_E2E");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace testsupport

// Use at the top of a test (or SetUp) that needs something only root or a real runtime has.
// Outside of a required run it skips and says why; inside one it fails and says why.
#define E2E_REQUIRE(condition, why)                                                       \
  do {                                                                                    \
    if (!(condition)) {                                                                   \
      if (::testsupport::e2eRequired()) {                                                 \
        GTEST_FAIL() << "end-to-end prerequisite missing: " << (why);                     \
      } else {                                                                            \
        GTEST_SKIP() << "skipped: " << (why)                                              \
                     << " (set CAPTURE_CONTROLLER_REQUIRE_E2E=1 to make this a failure)"; \
      }                                                                                   \
    }                                                                                     \
  } while (0)

#define E2E_REQUIRE_ROOT() \
  E2E_REQUIRE(::geteuid() == 0, "needs root (network namespaces, containerd, tcpdump)")

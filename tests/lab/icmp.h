#pragma once

#include <chrono>
#include <string>

#include "absl/status/status.h"

namespace lab {

// Sends one ICMP echo request to `ipv4` from the host and waits for the matching reply: the
// traffic an end-to-end test makes towards a pod (the pod IP answers from its own netns).
// Needs root (raw socket); no ping binary needed.
absl::Status pingOnce(const std::string& ipv4,
                      std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace lab

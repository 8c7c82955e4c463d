#pragma once

#include <chrono>
#include <string>

#include "absl/status/statusor.h"

namespace cmd {

// The running controller's HTTP endpoint, for the subcommands that ask it (captures, follow).
class ControllerClient {
 public:
  // From --http-address: its port, on 127.0.0.1 unless a host is given (the controller listens
  // on every address by default, and the subcommands run in its Pod). InvalidArgument for an
  // address the flag does not take.
  static absl::StatusOr<ControllerClient> fromHttpAddress(const std::string& http_address);

  // host:port, for messages.
  const std::string& where() const { return where_; }

  // The body of GET /captures. Unavailable when the controller does not answer, with a message
  // that says so and what to check; Internal for an answer other than 200, with its body.
  absl::StatusOr<std::string> getCaptures(
      std::chrono::seconds read_timeout = std::chrono::seconds(10)) const;

 private:
  ControllerClient(std::string host, int port);

  std::string host_;
  int port_ = 0;
  std::string where_;
};

}  // namespace cmd

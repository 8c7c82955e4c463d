#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fakeapi {

// Runs a program (no shell) and waits for it; its exit status (128 + signal when killed), or an
// error when it cannot start. `quiet`: its stdout and stderr go to /dev/null.
absl::StatusOr<int> runForExitStatus(const std::vector<std::string>& argv, bool quiet);
// The same, quiet; an error when it exits non-zero.
absl::Status runProgram(const std::vector<std::string>& argv);

// A throw-away PKI made with the openssl CLI at test time: a CA, a server certificate for
// 127.0.0.1, localhost and `extra_ips`, a client certificate (CN=capture-controller), and a
// second, unrelated CA with a server certificate of its own.
struct TestCertificates {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string other_ca_cert;
  std::string other_server_cert;  // signed by other_ca_cert, for the same names
  std::string other_server_key;
};
absl::StatusOr<TestCertificates> generateTestCertificates(
    const std::string& dir, const std::vector<std::string>& extra_ips = {});

}  // namespace fakeapi

#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fakeapi {

// A fresh directory under $TMPDIR (or /tmp), unique to this call.
std::string makeTempDir(const std::string& prefix);

// Runs a program (no shell) and waits for it; an error when it cannot start or exits non-zero.
absl::Status runProgram(const std::vector<std::string>& argv);

// A throw-away PKI made with the openssl CLI at test time: a CA, a server certificate for
// 127.0.0.1 and localhost, a client certificate (CN=capture-controller), and a second,
// unrelated CA that trusts none of them.
struct TestCertificates {
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string other_ca_cert;
};
absl::StatusOr<TestCertificates> generateTestCertificates(const std::string& dir);

}  // namespace fakeapi

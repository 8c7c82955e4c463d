// One HTTPS request through k8s::HttpClient with libcurl's default trust store replaced by a test
// CA, in a private mount namespace, so that http_client_test can check which CAs the client
// trusts without touching the machine's real /etc/ssl/certs. Root only (unshare, mount).
//
//   ca_trust_probe SYSTEM_CA_PEM SERVER_URL none|file|data [CA_PEM]
//
// SYSTEM_CA_PEM becomes everything curl trusts by default (its compiled-in CA bundle and CA
// directory); CA_PEM is what the ClusterConfig names, as a file or as data, or nothing.
// Exit status: 0 the server answered over verified TLS, 1 the connection was refused (TLS
// verification), 2 the probe could not set itself up.
#include <curl/curl.h>
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "k8s/http_client.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/support/files.h"

namespace {

namespace fs = std::filesystem;

constexpr int kSetupFailed = 2;

using testsupport::readFile;

// Puts `ca_pem` where curl looks when it is told nothing: a tmpfs over its CA directory holding
// the CA under its OpenSSL hash name and, when the default bundle lives there too, as the bundle.
bool replaceDefaultTrust(const std::string& ca_pem) {
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  if (curl->capath == nullptr || !fs::is_directory(curl->capath)) {
    std::cerr << "libcurl has no default CA directory to replace\n";
    return false;
  }
  const fs::path capath(curl->capath);
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("tmpfs", capath.c_str(), "tmpfs", 0, "mode=0755") != 0) {
    std::cerr << "private mount of " << capath << ": " << std::strerror(errno) << "\n";
    return false;
  }
  std::ofstream(capath / "test-ca.pem") << readFile(ca_pem);
  if (curl->cainfo != nullptr && fs::path(curl->cainfo).parent_path() == capath) {
    std::ofstream(curl->cainfo) << readFile(ca_pem);
  }
  if (auto rehashed = fakeapi::runProgram({"openssl", "rehash", capath.string()}); !rehashed.ok()) {
    std::cerr << rehashed << "\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string how = argc >= 4 ? argv[3] : "";
  if (!(argc == 4 && how == "none") && !(argc == 5 && (how == "file" || how == "data"))) {
    std::cerr << "usage: ca_trust_probe SYSTEM_CA_PEM SERVER_URL none|file|data [CA_PEM]\n";
    return kSetupFailed;
  }
  if (!replaceDefaultTrust(argv[1])) return kSetupFailed;
  k8s::ClusterConfig config;
  config.server = argv[2];
  if (how == "file") config.ca_file = argv[4];
  if (how == "data") config.ca_data = readFile(argv[4]);
  auto response = k8s::HttpClient(config).request("GET", "/api/v1/pods");
  if (!response.ok()) {
    std::cout << "refused: " << response.status() << "\n";
    return 1;
  }
  std::cout << "answered: HTTP " << response->status << "\n";
  return 0;
}

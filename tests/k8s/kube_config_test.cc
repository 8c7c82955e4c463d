#include "k8s/kube_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/escaping.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/support/files.h"

namespace k8s {
namespace {

using ::testing::HasSubstr;

constexpr char kCa[] = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }

  ConfigSources sources() {
    ConfigSources s;
    s.getenv = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    s.service_account_dir = dir_ + "/sa";
    return s;
  }

  const testsupport::TempDir temp_{"kubeconfig"};  // removed after the test
  const std::string dir_ = temp_.path();
  std::map<std::string, std::string> env_;
};

std::string kubeconfig(const std::string& cluster, const std::string& user,
                       const std::string& current = "ctx") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: " + current +
         "\nclusters:\n- name: c\n  cluster:\n" + cluster + "\nusers:\n- name: u\n  user:\n" +
         user +
         "\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n"
         "- name: other\n  context:\n    cluster: c2\n    user: u\n";
}

TEST_F(KubeConfigTest, TokenAndCaData) {
  const std::string path = write("config", kubeconfig("    server: https://10.0.0.1:6443/\n"
                                                      "    certificate-authority-data: " +
                                                          absl::Base64Escape(kCa),
                                                      "    token: secret"));
  auto config = loadKubeconfig({path});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(config->ca_data, kCa);
  EXPECT_EQ(config->token, "secret");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_THAT(config->source, HasSubstr("context ctx"));
}

TEST_F(KubeConfigTest, RelativeFilesResolveAgainstTheKubeconfigsDirectory) {
  write("sub/ca.crt", kCa);
  write("sub/token", "t");
  write("sub/client.crt", "cert");
  write("sub/client.key", "key");
  const std::string path = write("sub/config", kubeconfig("    server: https://h\n"
                                                          "    certificate-authority: ca.crt",
                                                          "    tokenFile: token\n"
                                                          "    client-certificate: client.crt\n"
                                                          "    client-key: client.key"));
  auto config = loadKubeconfig({path});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ca_file, dir_ + "/sub/ca.crt");
  EXPECT_EQ(config->token_file, dir_ + "/sub/token");
  EXPECT_EQ(config->client_cert_file, dir_ + "/sub/client.crt");
  EXPECT_EQ(config->client_key_file, dir_ + "/sub/client.key");
}

TEST_F(KubeConfigTest, ClientCertificateDataAndInsecure) {
  const std::string path =
      write("config", kubeconfig("    server: https://h\n    insecure-skip-tls-verify: true",
                                 "    client-certificate-data: " + absl::Base64Escape("CERT") +
                                     "\n    client-key-data: " + absl::Base64Escape("KEY")));
  auto config = loadKubeconfig({path});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->client_cert_data, "CERT");
  EXPECT_EQ(config->client_key_data, "KEY");
}

TEST_F(KubeConfigTest, ContextOverrideAndMergedFilesFirstWins) {
  const std::string first =
      write("first",
            "current-context: ctx\nclusters:\n- name: c2\n  cluster:\n"
            "    server: https://first\nusers:\n- name: u\n  user:\n    token: one\n");
  const std::string second =
      write("second", kubeconfig("    server: https://second", "    token: two", "other"));
  auto merged = loadKubeconfig({first, second});
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->server, "https://second");  // ctx → cluster c, defined only in the second
  EXPECT_EQ(merged->token, "one");              // user u: the first file wins
  auto other = loadKubeconfig({first, second}, "other");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->server, "https://first");
}

TEST_F(KubeConfigTest, ErrorsNameWhatIsMissing) {
  const std::string cluster = "    server: https://h";
  const std::string user = "    token: t";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {kubeconfig(cluster, user, "\"\""), "current-context is not set"},
      {kubeconfig(cluster, user, "nope"), "context \"nope\" not found"},
      {kubeconfig(cluster, user, "other"), "cluster \"c2\" of context \"other\" not found"},
      {kubeconfig("    insecure-skip-tls-verify: true", user), "cluster \"c\" has no server"},
      {kubeconfig("    server: h:6443", user), "is not an http(s) URL"},
      {kubeconfig(cluster + "\n    certificate-authority-data: not*base64", user),
       "certificate-authority-data of cluster \"c\" is not valid base64"},
      {kubeconfig(cluster + "\n    certificate-authority: /no/ca.crt", user),
       "certificate-authority /no/ca.crt: no such file"},
      {kubeconfig(cluster +
                      "\n    insecure-skip-tls-verify: true\n"
                      "    certificate-authority-data: " +
                      absl::Base64Escape(kCa),
                  user),
       "cluster \"c\": insecure-skip-tls-verify together with a certificate-authority"},
      {kubeconfig(cluster + "\n    insecure-skip-tls-verify: true\n"
                            "    certificate-authority: /no/ca.crt",
                  user),
       "specifying a root certificates file with the insecure flag is not allowed"},
      {kubeconfig(cluster, "    tokenFile: /no/token"), "tokenFile /no/token: no such file"},
      {kubeconfig(cluster, "    client-certificate-data: Q0VSVA=="),
       "client certificate without a key"},
      {kubeconfig(cluster, "    exec:\n      command: aws"),
       "credential plugins are not supported"},
      {"clusters: [", "kubeconfig"},
  };
  for (const auto& [text, expected] : cases) {
    auto config = loadKubeconfig({write("config", text)});
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(expected)) << text;
  }
  auto missing = loadKubeconfig({dir_ + "/absent"});
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir_ + "/absent"));
  const std::string user_less =
      "current-context: ctx\nclusters:\n- name: c\n  cluster:\n    server: https://h\n"
      "contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: ghost\n";
  auto ghost = loadKubeconfig({write("config", user_less)});
  EXPECT_THAT(std::string(ghost.status().message()), HasSubstr("user \"ghost\""));
}

// A hand-edited kubeconfig can have any shape: an error naming the file and the key, never an
// exception out of the loader (which would end start-up with std::terminate).
TEST_F(KubeConfigTest, MalformedShapesAreErrorsNamingTheFileAndTheKey) {
  const std::string user = "    token: t";
  const std::string contexts = "contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"current-context: ctx\nclusters:\n- name: c\n  cluster: oops\n" + contexts,
       "clusters[0].cluster is not a map"},
      {"current-context: ctx\nclusters:\n- name: c\n  cluster:\n    server: https://h\n"
       "users:\n- name: u\n  user: oops\n" +
           contexts,
       "users[0].user is not a map"},
      {"current-context: ctx\nclusters: [c]\n" + contexts, "clusters[0] is not a map"},
      {"current-context: ctx\nclusters: oops\n" + contexts, "clusters is not a list"},
      {"current-context: ctx\ncontexts:\n- name: ctx\n  context: [c, u]\n",
       "contexts[0].context is not a map"},
  };
  for (const auto& [text, expected] : cases) {
    const std::string path = write("config", text);
    auto config = loadKubeconfig({path});
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr("kubeconfig " + path + ": "))
        << text;
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(expected)) << text;
  }
  // An entry without its inner map, or with an empty one, is only missing what it would hold.
  auto bare =
      loadKubeconfig({write("config", "current-context: ctx\nclusters:\n- name: c\n" + contexts)});
  EXPECT_THAT(std::string(bare.status().message()), HasSubstr("cluster \"c\" has no server"));
  auto empty_user = loadKubeconfig({write("config",
                                          "current-context: ctx\nclusters:\n- name: c\n  cluster:\n"
                                          "    server: https://h\nusers:\n- name: u\n  user:\n" +
                                              contexts)});
  ASSERT_TRUE(empty_user.ok()) << empty_user.status();
  EXPECT_EQ(empty_user->server, "https://h");
}

TEST_F(KubeConfigTest, InCluster) {
  write("sa/token", "sa-token");
  write("sa/ca.crt", kCa);
  env_ = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  auto config = loadInClusterConfig(sources());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, dir_ + "/sa/token");
  EXPECT_EQ(config->ca_file, dir_ + "/sa/ca.crt");

  env_["KUBERNETES_SERVICE_HOST"] = "fd00::1";
  EXPECT_EQ(loadInClusterConfig(sources())->server, "https://[fd00::1]:443");

  env_.erase("KUBERNETES_SERVICE_PORT");
  EXPECT_THAT(std::string(loadInClusterConfig(sources()).status().message()),
              HasSubstr("KUBERNETES_SERVICE_PORT is not set"));
  env_["KUBERNETES_SERVICE_PORT"] = "443";
  std::filesystem::remove(dir_ + "/sa/token");
  EXPECT_THAT(std::string(loadInClusterConfig(sources()).status().message()),
              HasSubstr("service-account token " + dir_ + "/sa/token: no such file"));
}

TEST_F(KubeConfigTest, LookupOrderFlagThenEnvThenInClusterThenHome) {
  write("sa/token", "sa-token");
  write("sa/ca.crt", kCa);
  write("home/.kube/config", kubeconfig("    server: https://home", "    token: t"));
  const std::string env_path = write("env", kubeconfig("    server: https://env", "    token: t"));
  const std::string flag_path =
      write("flag", kubeconfig("    server: https://flag", "    token: t"));
  env_ = {{"HOME", dir_ + "/home"},
          {"KUBECONFIG", dir_ + "/absent:" + env_path},
          {"KUBERNETES_SERVICE_HOST", "10.96.0.1"},
          {"KUBERNETES_SERVICE_PORT", "443"}};
  ConfigSources with_flag = sources();
  with_flag.kubeconfig_flag = flag_path;
  EXPECT_EQ(loadClusterConfig(with_flag)->server, "https://flag");
  EXPECT_EQ(loadClusterConfig(sources())->server, "https://env");
  env_.erase("KUBECONFIG");
  EXPECT_EQ(loadClusterConfig(sources())->server, "https://10.96.0.1:443");
  env_.erase("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(loadClusterConfig(sources())->server, "https://home");
  env_.erase("HOME");
  auto none = loadClusterConfig(sources());
  ASSERT_FALSE(none.ok());
  for (const char* place :
       {"--kubeconfig", "$KUBECONFIG", "KUBERNETES_SERVICE_HOST", "~/.kube/config"}) {
    EXPECT_THAT(std::string(none.status().message()), HasSubstr(place));
  }
}

}  // namespace
}  // namespace k8s

#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace k8s {

// How to reach and authenticate to one API server: what a rest.Config holds in client-go,
// reduced to what this agent uses. Plain data; HttpClient turns it into TLS and headers.
struct ClusterConfig {
  std::string server;   // e.g. https://10.96.0.1:443, no trailing slash
  std::string ca_file;  // PEM bundle that signs the server's certificate
  std::string ca_data;  // the same as PEM text (kubeconfig certificate-authority-data)
  bool insecure_skip_tls_verify = false;
  std::string token;       // a static bearer token
  std::string token_file;  // a bearer token re-read from this file (wins over `token`)
  std::string client_cert_file;
  std::string client_cert_data;  // PEM
  std::string client_key_file;
  std::string client_key_data;  // PEM
  std::string source;           // where this came from, for logs and errors
};

// Where loadClusterConfig() looks. Every input is overridable so that tests never depend on
// the environment of the machine they run on.
struct ConfigSources {
  std::string kubeconfig_flag;  // --kubeconfig; empty when not given
  std::string context;          // --context; empty: the kubeconfig's current-context
  // Reads an environment variable; nullopt when unset. Defaults to the process environment.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
};

// The order of controller-runtime's GetConfig: --kubeconfig, then $KUBECONFIG (a
// colon-separated list, merged), then in-cluster when KUBERNETES_SERVICE_HOST is set, then
// ~/.kube/config. The error names every place it looked when none applies.
absl::StatusOr<ClusterConfig> loadClusterConfig(const ConfigSources& sources);

// In a Pod: KUBERNETES_SERVICE_HOST/_PORT, and the service account's token and ca.crt.
absl::StatusOr<ClusterConfig> loadInClusterConfig(const ConfigSources& sources);

// One or more kubeconfig files merged like kubectl does: the first file that defines a
// cluster, user, context or current-context wins. Relative file paths in a kubeconfig are
// relative to the file that names them. `context` empty means current-context.
absl::StatusOr<ClusterConfig> loadKubeconfig(const std::vector<std::string>& paths,
                                             std::string_view context = "");

}  // namespace k8s

#include "k8s/kube_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace k8s {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> processGetenv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

std::optional<std::string> lookupEnv(const ConfigSources& sources, const std::string& name) {
  return sources.getenv ? sources.getenv(name) : processGetenv(name);
}

absl::Status requireReadableFile(const std::string& path, std::string_view what) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat(std::string(what), " ", path, ": no such file"));
  }
  return absl::OkStatus();
}

// A kubeconfig entry (cluster, user or context) and the directory of the file that defined
// it, against which its relative paths resolve.
struct NamedEntry {
  YAML::Node node;
  fs::path base_dir;
};

struct MergedKubeconfig {
  std::map<std::string, NamedEntry> clusters;
  std::map<std::string, NamedEntry> users;
  std::map<std::string, NamedEntry> contexts;
  std::string current_context;
};

std::string scalar(const YAML::Node& parent, const char* key) {
  const YAML::Node value = parent[key];
  return value && value.IsScalar() ? value.as<std::string>() : std::string();
}

std::string resolvePath(const std::string& path, const fs::path& base_dir) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (base_dir / path).lexically_normal().string();
}

absl::StatusOr<std::string> decodeBase64Field(const YAML::Node& parent, const char* key,
                                              std::string_view owner) {
  const std::string encoded = scalar(parent, key);
  std::string decoded;
  if (!encoded.empty() && !absl::Base64Unescape(encoded, &decoded)) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " of ", std::string(owner), " is not valid base64"));
  }
  return decoded;
}

// A list of named entries (`clusters`, `users`, `contexts`), each holding its inner map
// (`cluster`, `user`, `context`). Only maps are indexed: yaml-cpp throws on a key of a scalar.
absl::Status mergeNamedList(const YAML::Node& root, const char* list_key, const char* inner_key,
                            const fs::path& base_dir, std::map<std::string, NamedEntry>& into) {
  const YAML::Node list = root[list_key];
  if (!list || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) {
    return absl::InvalidArgumentError(absl::StrCat(list_key, " is not a list"));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string where = absl::StrCat(list_key, "[", i, "]");
    if (!item.IsMap()) return absl::InvalidArgumentError(where + " is not a map");
    const YAML::Node inner = item[inner_key];
    if (inner && !inner.IsNull() && !inner.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".", inner_key, " is not a map"));
    }
    const std::string name = scalar(item, "name");
    if (name.empty() || into.count(name) != 0) continue;  // the first file to define it wins
    // kubectl reads a missing or empty one as an empty map.
    into.emplace(name, NamedEntry{inner && inner.IsMap() ? inner : YAML::Node(YAML::NodeType::Map),
                                  base_dir});
  }
  return absl::OkStatus();
}

absl::Status mergeFile(const std::string& path, MergedKubeconfig& merged) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("kubeconfig ", path, ": cannot be read"));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": ", e.what()));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": not a YAML map"));
  }
  const fs::path base_dir = fs::absolute(path).parent_path();
  for (const auto& [list_key, inner_key, into] :
       {std::tuple{"clusters", "cluster", &merged.clusters},
        std::tuple{"users", "user", &merged.users},
        std::tuple{"contexts", "context", &merged.contexts}}) {
    if (auto s = mergeNamedList(root, list_key, inner_key, base_dir, *into); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": ", s.message()));
    }
  }
  if (merged.current_context.empty()) merged.current_context = scalar(root, "current-context");
  return absl::OkStatus();
}

absl::Status applyCluster(const std::string& name, const NamedEntry& entry, ClusterConfig& config) {
  const std::string owner = absl::StrCat("cluster \"", name, "\"");
  config.server = scalar(entry.node, "server");
  if (config.server.empty()) return absl::InvalidArgumentError(owner + " has no server");
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(owner, ": server ", config.server, " is not an http(s) URL"));
  }
  while (config.server.size() > 1 && config.server.back() == '/') config.server.pop_back();
  config.insecure_skip_tls_verify = scalar(entry.node, "insecure-skip-tls-verify") == "true";
  config.ca_file = resolvePath(scalar(entry.node, "certificate-authority"), entry.base_dir);
  auto ca_data = decodeBase64Field(entry.node, "certificate-authority-data", owner);
  if (!ca_data.ok()) return ca_data.status();
  config.ca_data = std::move(*ca_data);
  // client-go refuses the pair, and honouring either one would silently drop the other.
  if (config.insecure_skip_tls_verify && !(config.ca_file.empty() && config.ca_data.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        owner,
        ": insecure-skip-tls-verify together with a certificate-authority: specifying a root "
        "certificates file with the insecure flag is not allowed (kubectl refuses it too)"));
  }
  if (!config.ca_file.empty() && config.ca_data.empty()) {
    if (auto s = requireReadableFile(config.ca_file, owner + " certificate-authority"); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status applyUser(const std::string& name, const NamedEntry& entry, ClusterConfig& config) {
  const std::string owner = absl::StrCat("user \"", name, "\"");
  const YAML::Node& user = entry.node;
  if (user["exec"] || user["auth-provider"]) {
    return absl::UnimplementedError(
        absl::StrCat(owner,
                     ": exec and auth-provider credential plugins are not supported; "
                     "use a token, a token file or a client certificate"));
  }
  config.token = scalar(user, "token");
  config.token_file = resolvePath(scalar(user, "tokenFile"), entry.base_dir);
  if (!config.token_file.empty()) {
    if (auto s = requireReadableFile(config.token_file, owner + " tokenFile"); !s.ok()) return s;
  }
  config.client_cert_file = resolvePath(scalar(user, "client-certificate"), entry.base_dir);
  config.client_key_file = resolvePath(scalar(user, "client-key"), entry.base_dir);
  auto cert_data = decodeBase64Field(user, "client-certificate-data", owner);
  if (!cert_data.ok()) return cert_data.status();
  auto key_data = decodeBase64Field(user, "client-key-data", owner);
  if (!key_data.ok()) return key_data.status();
  config.client_cert_data = std::move(*cert_data);
  config.client_key_data = std::move(*key_data);
  const bool has_cert = !config.client_cert_file.empty() || !config.client_cert_data.empty();
  const bool has_key = !config.client_key_file.empty() || !config.client_key_data.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError(
        absl::StrCat(owner, " has a client ",
                     has_cert ? "certificate without a key" : "key without a certificate"));
  }
  for (const auto& [path, what] : {std::pair{config.client_cert_file, "client-certificate"},
                                   std::pair{config.client_key_file, "client-key"}}) {
    if (path.empty()) continue;
    if (auto s = requireReadableFile(path, absl::StrCat(owner, " ", what)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<ClusterConfig> mergeAndApply(const std::vector<std::string>& paths,
                                            std::string_view context) {
  MergedKubeconfig merged;
  bool any_read = false;
  absl::Status first_error;
  for (const std::string& path : paths) {
    absl::Status status = mergeFile(path, merged);
    if (status.ok()) {
      any_read = true;
    } else if (absl::IsNotFound(status) && paths.size() > 1) {
      // kubectl skips missing files of a $KUBECONFIG list; a malformed one is still an error.
      if (first_error.ok()) first_error = status;
    } else {
      return status;
    }
  }
  if (!any_read) {
    return first_error.ok() ? absl::InvalidArgumentError("no kubeconfig file given") : first_error;
  }
  const std::string files = absl::StrJoin(paths, ":");
  const std::string context_name = context.empty() ? merged.current_context : std::string(context);
  if (context_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", files, ": current-context is not set and no context given"));
  }
  auto context_it = merged.contexts.find(context_name);
  if (context_it == merged.contexts.end()) {
    return absl::NotFoundError(
        absl::StrCat("kubeconfig ", files, ": context \"", context_name, "\" not found"));
  }
  const std::string cluster_name = scalar(context_it->second.node, "cluster");
  const std::string user_name = scalar(context_it->second.node, "user");
  auto cluster_it = merged.clusters.find(cluster_name);
  if (cluster_it == merged.clusters.end()) {
    return absl::NotFoundError(absl::StrCat("kubeconfig ", files, ": cluster \"", cluster_name,
                                            "\" of context \"", context_name, "\" not found"));
  }
  ClusterConfig config;
  config.source = absl::StrCat("kubeconfig ", files, " context ", context_name);
  if (auto s = applyCluster(cluster_name, cluster_it->second, config); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("kubeconfig ", files, ": ", s.message()));
  }
  if (!user_name.empty()) {
    auto user_it = merged.users.find(user_name);
    if (user_it == merged.users.end()) {
      return absl::NotFoundError(absl::StrCat("kubeconfig ", files, ": user \"", user_name,
                                              "\" of context \"", context_name, "\" not found"));
    }
    if (auto s = applyUser(user_name, user_it->second, config); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("kubeconfig ", files, ": ", s.message()));
    }
  }
  return config;
}

}  // namespace

absl::StatusOr<ClusterConfig> loadKubeconfig(const std::vector<std::string>& paths,
                                             std::string_view context) {
  // Shapes are checked before they are indexed; this is the net for any yaml-cpp throw left.
  try {
    return mergeAndApply(paths, context);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", absl::StrJoin(paths, ":"), ": ", e.what()));
  }
}

absl::StatusOr<ClusterConfig> loadInClusterConfig(const ConfigSources& sources) {
  const auto host = lookupEnv(sources, "KUBERNETES_SERVICE_HOST");
  const auto port = lookupEnv(sources, "KUBERNETES_SERVICE_PORT");
  if (!host || !port) {
    return absl::FailedPreconditionError(absl::StrCat(
        "in-cluster config: ", !host ? "KUBERNETES_SERVICE_HOST" : "KUBERNETES_SERVICE_PORT",
        " is not set (not running in a Pod?)"));
  }
  ClusterConfig config;
  // An IPv6 service IP needs brackets in a URL.
  const bool ipv6 = host->find(':') != std::string::npos;
  config.server = absl::StrCat("https://", ipv6 ? "[" : "", *host, ipv6 ? "]" : "", ":", *port);
  const fs::path dir(sources.service_account_dir);
  config.token_file = (dir / "token").string();
  config.ca_file = (dir / "ca.crt").string();
  config.source = "in-cluster service account " + dir.string();
  for (const auto& [path, what] : {std::pair{config.token_file, "service-account token"},
                                   std::pair{config.ca_file, "service-account CA"}}) {
    if (auto s = requireReadableFile(path, absl::StrCat("in-cluster config: ", what)); !s.ok()) {
      return s;
    }
  }
  return config;
}

absl::StatusOr<ClusterConfig> loadClusterConfig(const ConfigSources& sources) {
  if (!sources.kubeconfig_flag.empty()) {
    return loadKubeconfig({sources.kubeconfig_flag}, sources.context);
  }
  if (auto env = lookupEnv(sources, "KUBECONFIG")) {
    std::vector<std::string> paths;
    for (absl::string_view part : absl::StrSplit(*env, ':', absl::SkipEmpty())) {
      paths.emplace_back(part);
    }
    if (!paths.empty()) return loadKubeconfig(paths, sources.context);
  }
  if (lookupEnv(sources, "KUBERNETES_SERVICE_HOST")) return loadInClusterConfig(sources);
  if (auto home = lookupEnv(sources, "HOME")) {
    const std::string path = (fs::path(*home) / ".kube" / "config").string();
    std::error_code error;
    if (fs::exists(path, error)) return loadKubeconfig({path}, sources.context);
  }
  return absl::NotFoundError(
      "no Kubernetes API config: --kubeconfig not given, $KUBECONFIG not set, not in a Pod "
      "(KUBERNETES_SERVICE_HOST not set), and no ~/.kube/config");
}

}  // namespace k8s

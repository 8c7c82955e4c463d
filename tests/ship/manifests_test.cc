// The manifests of deploy/ and kind/, parsed with yaml-cpp and checked for what a real Kind
// cluster needs, and against the names the Kind scripts use (kind/common.sh).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/ship/repo_files.h"

namespace ship {
namespace {

std::vector<YAML::Node> loadDocuments(const std::string& relative) {
  try {
    return YAML::LoadAllFromFile(repoPath(relative));
  } catch (const YAML::Exception& e) {
    ADD_FAILURE() << relative << ": " << e.what();
    return {};
  }
}

std::string str(const YAML::Node& node);

// The one document of `kind` in the file; fails the test when there is not exactly one.
// Const, like every node these checks read: a non-const subscript inserts the key it looks up.
const YAML::Node findObject(const std::string& relative, const std::string& kind) {
  std::vector<YAML::Node> found;
  for (const YAML::Node& doc : loadDocuments(relative)) {
    if (str(doc["kind"]) == kind) found.push_back(doc);
  }
  if (found.size() != 1) {
    ADD_FAILURE() << relative << ": expected one " << kind << ", found " << found.size();
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return found.front();
}

// node[k1][k2]...; an undefined node when any key is missing (yaml-cpp throws on a
// subscript of a missing node).
YAML::Node at(const YAML::Node& node, std::initializer_list<std::string> keys) {
  YAML::Node current = node;
  for (const std::string& key : keys) {
    const YAML::Node& parent = current;
    if (!parent || !parent.IsMap() || !parent[key]) return YAML::Node(YAML::NodeType::Undefined);
    current.reset(parent[key]);
  }
  return current;
}

bool isTrue(const YAML::Node& node) { return node && node.IsScalar() && node.as<bool>(); }

std::string str(const YAML::Node& node) {
  return node && node.IsScalar() ? node.as<std::string>() : "";
}

std::vector<std::string> strings(const YAML::Node& node) {
  std::vector<std::string> values;
  if (node && node.IsSequence()) {
    for (const YAML::Node& item : node) values.push_back(str(item));
  }
  return values;
}

// The `--name=value` arguments of a container, by name ("--logtostderr" alone maps to "").
std::map<std::string, std::string> flagsOf(const YAML::Node& container) {
  std::map<std::string, std::string> flags;
  for (const std::string& arg : strings(container["args"])) {
    const size_t eq = arg.find('=');
    flags[arg.substr(0, eq)] = eq == std::string::npos ? "" : arg.substr(eq + 1);
  }
  return flags;
}

const YAML::Node daemonSet() { return findObject("deploy/daemonset.yaml", "DaemonSet"); }
const YAML::Node podSpec() { return at(daemonSet(), {"spec", "template", "spec"}); }
const YAML::Node controllerContainer() {
  const YAML::Node containers = podSpec()["containers"];
  if (!containers.IsSequence() || containers.size() != 1) {
    ADD_FAILURE() << "the DaemonSet should run exactly one container";
    return YAML::Node(YAML::NodeType::Undefined);
  }
  return containers[0];
}

YAML::Node volumeMountFor(const YAML::Node& container, const std::string& host_path) {
  for (const YAML::Node& volume : podSpec()["volumes"]) {
    if (str(at(volume, {"hostPath", "path"})) != host_path) continue;
    for (const YAML::Node& mount : container["volumeMounts"]) {
      if (str(mount["name"]) == str(volume["name"])) return mount;
    }
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

TEST(Manifests, EveryYamlFileHoldsKubernetesOrKindObjects) {
  std::set<std::string> seen;
  for (const std::string dir : {"deploy", "kind"}) {
    for (const auto& entry : std::filesystem::directory_iterator(repoPath(dir))) {
      const std::string ext = entry.path().extension().string();
      if (ext != ".yaml" && ext != ".yml") continue;
      const std::string relative = dir + "/" + entry.path().filename().string();
      seen.insert(relative);
      const std::vector<YAML::Node> docs = loadDocuments(relative);
      EXPECT_FALSE(docs.empty()) << relative;
      for (const YAML::Node& doc : docs) {
        ASSERT_TRUE(doc.IsMap()) << relative;
        EXPECT_FALSE(str(doc["apiVersion"]).empty()) << relative;
        EXPECT_FALSE(str(doc["kind"]).empty()) << relative;
        if (str(doc["apiVersion"]).rfind("kind.x-k8s.io/", 0) != 0) {
          EXPECT_FALSE(str(at(doc, {"metadata", "name"})).empty())
              << relative << " " << doc["kind"];
        }
      }
    }
  }
  for (const char* expected : {"deploy/rbac.yaml", "deploy/daemonset.yaml", "deploy/test-pod.yaml",
                               "kind/kind-config.yaml"}) {
    EXPECT_TRUE(seen.count(expected)) << expected << " is missing";
  }
}

TEST(Rbac, ClusterRoleOnlyReadsPodsAndWritesEvents) {
  const YAML::Node role = findObject("deploy/rbac.yaml", "ClusterRole");
  std::set<std::tuple<std::string, std::string, std::vector<std::string>>> rules;
  for (const YAML::Node& rule : role["rules"]) {
    EXPECT_FALSE(rule["resourceNames"]) << "no rule is limited to names";
    EXPECT_FALSE(rule["nonResourceURLs"]);
    for (const std::string& group : strings(rule["apiGroups"])) {
      for (const std::string& resource : strings(rule["resources"])) {
        std::vector<std::string> verbs = strings(rule["verbs"]);
        std::sort(verbs.begin(), verbs.end());
        rules.insert({group, resource, verbs});
      }
    }
  }
  const std::set<std::tuple<std::string, std::string, std::vector<std::string>>> expected = {
      {"", "pods", {"get", "list", "watch"}},
      {"", "events", {"create", "patch"}},
  };
  EXPECT_EQ(rules, expected);
}

TEST(Rbac, BindingGivesTheRoleToTheDaemonSetsServiceAccount) {
  const YAML::Node account = findObject("deploy/rbac.yaml", "ServiceAccount");
  const YAML::Node role = findObject("deploy/rbac.yaml", "ClusterRole");
  const YAML::Node binding = findObject("deploy/rbac.yaml", "ClusterRoleBinding");
  EXPECT_EQ(str(at(account, {"metadata", "name"})), "capture-controller");
  EXPECT_EQ(str(at(binding, {"roleRef", "kind"})), "ClusterRole");
  EXPECT_EQ(str(at(binding, {"roleRef", "name"})), str(at(role, {"metadata", "name"})));
  ASSERT_EQ(binding["subjects"].size(), 1u);
  const YAML::Node subject = binding["subjects"][0];
  EXPECT_EQ(str(subject["kind"]), "ServiceAccount");
  EXPECT_EQ(str(subject["name"]), str(at(account, {"metadata", "name"})));
  EXPECT_EQ(str(subject["namespace"]), str(at(account, {"metadata", "namespace"})));

  EXPECT_EQ(str(podSpec()["serviceAccountName"]), str(at(account, {"metadata", "name"})));
  EXPECT_EQ(str(at(daemonSet(), {"metadata", "namespace"})),
            str(at(account, {"metadata", "namespace"})));
}

TEST(DaemonSet, NodeNameComesFromTheDownwardApi) {
  const YAML::Node container = controllerContainer();
  bool found = false;
  for (const YAML::Node& env : container["env"]) {
    if (str(env["name"]) != "NODE_NAME") continue;
    found = true;
    EXPECT_FALSE(env["value"]);
    EXPECT_EQ(str(at(env, {"valueFrom", "fieldRef", "fieldPath"})), "spec.nodeName");
  }
  EXPECT_TRUE(found) << "no NODE_NAME in env";
  const auto flags = flagsOf(container);
  if (flags.count("--node-name")) {
    EXPECT_EQ(flags.at("--node-name"), "$(NODE_NAME)");
  }
}

TEST(DaemonSet, PassesOnlyFlagsTheBinaryDefines) {
  const std::set<std::string> known = binaryFlags();
  ASSERT_TRUE(known.contains("node_name")) << "no flag list from --helpxml";
  std::string args;
  for (const auto& [flag, value] : flagsOf(controllerContainer())) {
    // gflags takes --node-name for the flag node_name.
    std::string name = flag.substr(flag.find_first_not_of('-'));
    std::replace(name.begin(), name.end(), '-', '_');
    EXPECT_TRUE(known.contains(name)) << "the binary has no flag " << flag;
    args += " " + shellQuote(value.empty() ? flag : flag + "=" + value);
  }
  // The binary parses every value too (an int flag given "ten" fails), then --help exits 0.
  const CommandResult parsed = runCommand(shellQuote(CAPTURE_CONTROLLER_BINARY) + args + " --help");
  EXPECT_EQ(parsed.exit_code, 0) << parsed.output;
  EXPECT_FALSE(controllerContainer()["command"]) << "the image's ENTRYPOINT is the binary";
}

TEST(DaemonSet, MountsContainerdSocketAndNetnsFromTheHost) {
  const YAML::Node container = controllerContainer();
  const YAML::Node socket = volumeMountFor(container, "/run/containerd/containerd.sock");
  ASSERT_TRUE(socket) << "containerd's socket is not mounted from the host";
  EXPECT_EQ(flagsOf(container)["--cri-endpoint"], "unix://" + str(socket["mountPath"]));

  const YAML::Node netns = volumeMountFor(container, "/var/run/netns");
  ASSERT_TRUE(netns) << "/var/run/netns is not mounted from the host";
  // The CRI reports netns paths as the host sees them: mount them at the same place.
  EXPECT_EQ(str(netns["mountPath"]), "/var/run/netns");
  EXPECT_EQ(str(netns["mountPropagation"]), "HostToContainer");
}

TEST(DaemonSet, RunsOnEveryLinuxNodeAndIsEvictedLast) {
  EXPECT_EQ(str(at(podSpec(), {"nodeSelector", "kubernetes.io/os"})), "linux");
  EXPECT_EQ(str(podSpec()["priorityClassName"]), "system-node-critical");
  // system-node-critical is admitted in kube-system only.
  EXPECT_EQ(str(at(daemonSet(), {"metadata", "namespace"})), "kube-system");
}

TEST(DaemonSet, ProbesHitHealthzAndReadyzOnTheHttpAddressPort) {
  const YAML::Node container = controllerContainer();
  const std::string address = flagsOf(container)["--http-address"];
  ASSERT_NE(address.rfind(':'), std::string::npos) << "--http-address=" << address;
  const int http_port = std::stoi(address.substr(address.rfind(':') + 1));

  auto probePort = [&](const YAML::Node& probe) -> std::optional<int> {
    const YAML::Node port = at(probe, {"httpGet", "port"});
    if (!port) return std::nullopt;
    for (const YAML::Node& declared : container["ports"]) {
      if (str(declared["name"]) == str(port)) return declared["containerPort"].as<int>();
    }
    try {
      return port.as<int>();
    } catch (const YAML::Exception&) {
      return std::nullopt;  // a name no containerPort declares
    }
  };
  EXPECT_EQ(str(at(container, {"livenessProbe", "httpGet", "path"})), "/healthz");
  EXPECT_EQ(probePort(container["livenessProbe"]), http_port);
  EXPECT_EQ(str(at(container, {"readinessProbe", "httpGet", "path"})), "/readyz");
  EXPECT_EQ(probePort(container["readinessProbe"]), http_port);
}

// Whether one of the tolerations lets a Pod onto a node with this taint (Kubernetes' rules).
bool tolerates(const YAML::Node& tolerations, const std::string& key, const std::string& value,
               const std::string& effect) {
  for (const YAML::Node& t : tolerations) {
    const std::string op = t["operator"] ? str(t["operator"]) : "Equal";
    const bool key_matches = t["key"] ? str(t["key"]) == key : op == "Exists";
    const bool value_matches = op == "Exists" || str(t["value"]) == value;
    const bool effect_matches = !t["effect"] || str(t["effect"]) == effect;
    if (key_matches && value_matches && effect_matches) return true;
  }
  return false;
}

TEST(DaemonSet, RunsOnControlPlaneNodesToo) {
  const YAML::Node tolerations = podSpec()["tolerations"];
  EXPECT_TRUE(tolerates(tolerations, "node-role.kubernetes.io/control-plane", "", "NoSchedule"));
  EXPECT_FALSE(
      tolerates(YAML::Load("[]"), "node-role.kubernetes.io/control-plane", "", "NoSchedule"))
      << "the matcher itself";
}

TEST(DaemonSet, RequestsResourcesAndLimitsMemoryOnly) {
  const YAML::Node resources = controllerContainer()["resources"];
  EXPECT_TRUE(at(resources, {"requests", "cpu"}));
  EXPECT_TRUE(at(resources, {"requests", "memory"}));
  EXPECT_TRUE(at(resources, {"limits", "memory"}));
  // Throttling drops packets; an ephemeral-storage limit would evict the controller (and lose
  // every capture of the node) when captures fill the writable layer.
  EXPECT_FALSE(at(resources, {"limits", "cpu"}));
  EXPECT_FALSE(at(resources, {"limits", "ephemeral-storage"}));
}

TEST(DaemonSet, RollsOutOneNodeAtATimeWithoutSurge) {
  const YAML::Node strategy = at(daemonSet(), {"spec", "updateStrategy"});
  EXPECT_EQ(str(strategy["type"]), "RollingUpdate");
  EXPECT_EQ(str(at(strategy, {"rollingUpdate", "maxUnavailable"})), "1");
  // Two controllers on one node would both capture the same Pods.
  if (at(strategy, {"rollingUpdate", "maxSurge"})) {
    EXPECT_EQ(str(at(strategy, {"rollingUpdate", "maxSurge"})), "0");
  }
}

TEST(DaemonSet, GivesCapturesTimeToStop) {
  ASSERT_TRUE(podSpec()["terminationGracePeriodSeconds"]);
  EXPECT_GE(podSpec()["terminationGracePeriodSeconds"].as<int>(), 30);
}

TEST(DaemonSet, HoldsOnlyTheCapabilitiesItNeeds) {
  const YAML::Node spec = podSpec();
  EXPECT_FALSE(isTrue(spec["hostPID"]));
  EXPECT_FALSE(isTrue(spec["hostNetwork"]));
  const YAML::Node security = controllerContainer()["securityContext"];
  EXPECT_FALSE(isTrue(security["privileged"]));
  EXPECT_EQ(str(security["runAsUser"]), "0") << "containerd's socket is root's";
  EXPECT_EQ(strings(at(security, {"capabilities", "drop"})), std::vector<std::string>{"ALL"});
  const std::vector<std::string> added = strings(at(security, {"capabilities", "add"}));
  EXPECT_EQ(std::set<std::string>(added.begin(), added.end()),
            (std::set<std::string>{"SYS_ADMIN", "NET_RAW", "SETUID", "SETGID"}));
  EXPECT_EQ(str(at(security, {"seccompProfile", "type"})), "RuntimeDefault");
}

TEST(DaemonSet, RunsTheImageAndNamesThatTheKindScriptsUse) {
  const auto names = kindScriptNames();
  const YAML::Node ds = daemonSet();
  const YAML::Node container = controllerContainer();
  EXPECT_EQ(str(container["image"]), names.at("IMAGE"));
  // Kind loads the image into the nodes; no registry to pull it from.
  EXPECT_EQ(str(container["imagePullPolicy"]), "IfNotPresent");
  EXPECT_EQ(str(container["name"]), names.at("CONTROLLER_CONTAINER"));
  EXPECT_EQ(str(at(ds, {"metadata", "name"})), names.at("CONTROLLER_DAEMONSET"));
  EXPECT_EQ(str(at(ds, {"metadata", "namespace"})), names.at("CONTROLLER_NAMESPACE"));

  const std::string selector = names.at("CONTROLLER_SELECTOR");
  const std::string key = selector.substr(0, selector.find('='));
  const std::string value = selector.substr(selector.find('=') + 1);
  EXPECT_EQ(str(at(ds, {"spec", "selector", "matchLabels", key})), value);
  EXPECT_EQ(str(at(ds, {"spec", "template", "metadata", "labels", key})), value);
}

TEST(TestPod, IsAnOrdinaryPodThatVerifyShFinds) {
  const auto names = kindScriptNames();
  const YAML::Node pod = findObject("deploy/test-pod.yaml", "Pod");
  EXPECT_EQ(str(at(pod, {"metadata", "name"})), names.at("TEST_POD"));
  EXPECT_EQ(str(at(pod, {"metadata", "namespace"})), names.at("TEST_NAMESPACE"));
  // A hostNetwork Pod has no network namespace of its own: nothing to capture.
  EXPECT_FALSE(isTrue(at(pod, {"spec", "hostNetwork"})));
  EXPECT_FALSE(at(pod, {"metadata", "annotations", "tcpdump.antrea.io"}))
      << "verify.sh annotates the Pod itself";
  ASSERT_TRUE(at(pod, {"spec", "containers"}).IsSequence());
  for (const YAML::Node& container : at(pod, {"spec", "containers"})) {
    const std::string image = str(container["image"]);
    // A Docker Hub image (no registry host) with a fixed tag, so that Kind can pull it.
    const std::string first = image.substr(0, image.find('/'));
    EXPECT_FALSE(image.find('/') != std::string::npos &&
                 first.find_first_of(".:") != std::string::npos)
        << image;
    const size_t colon = image.rfind(':');
    ASSERT_NE(colon, std::string::npos) << image << " has no tag";
    EXPECT_NE(image.substr(colon + 1), "latest");
  }
}

// "a.b.c.d/len" as a 32-bit network and mask; nullopt when malformed.
std::optional<std::pair<uint32_t, uint32_t>> parseCidr(const std::string& cidr) {
  const size_t slash = cidr.find('/');
  in_addr address{};
  if (slash == std::string::npos ||
      ::inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &address) != 1) {
    return std::nullopt;
  }
  const int length = std::stoi(cidr.substr(slash + 1));
  if (length < 0 || length > 32) return std::nullopt;
  const uint32_t mask = length == 0 ? 0 : ~uint32_t{0} << (32 - length);
  return std::make_pair(ntohl(address.s_addr) & mask, mask);
}

bool overlap(const std::string& a, const std::string& b) {
  const auto x = parseCidr(a), y = parseCidr(b);
  if (!x || !y) return true;
  const uint32_t common = x->second & y->second;  // the shorter prefix
  return (x->first & common) == (y->first & common);
}

TEST(KindConfig, HasNoDefaultCniAndOneControlPlaneAndTwoWorkers) {
  const YAML::Node config = findObject("kind/kind-config.yaml", "Cluster");
  EXPECT_EQ(str(config["apiVersion"]), "kind.x-k8s.io/v1alpha4");
  EXPECT_TRUE(isTrue(at(config, {"networking", "disableDefaultCNI"})));
  int control_planes = 0, workers = 0;
  for (const YAML::Node& node : config["nodes"]) {
    control_planes += str(node["role"]) == "control-plane";
    workers += str(node["role"]) == "worker";
  }
  EXPECT_EQ(control_planes, 1);
  EXPECT_EQ(workers, 2);
  EXPECT_EQ(config["nodes"].size(), 3u);
}

TEST(KindConfig, PodSubnetLeavesRoomForServicesAndDocker) {
  const YAML::Node networking = findObject("kind/kind-config.yaml", "Cluster")["networking"];
  const std::string pods = str(networking["podSubnet"]);
  ASSERT_TRUE(parseCidr(pods)) << "podSubnet " << pods;
  // kube-controller-manager gives each node a /24 of it.
  const int prefix_length = std::stoi(pods.substr(pods.find('/') + 1));
  ASSERT_LE(prefix_length, 24);
  EXPECT_GE(1u << (24 - prefix_length),
            findObject("kind/kind-config.yaml", "Cluster")["nodes"].size());
  const std::string services =
      networking["serviceSubnet"] ? str(networking["serviceSubnet"]) : "10.96.0.0/16";
  EXPECT_FALSE(overlap(pods, services)) << pods << " vs Services " << services;
  EXPECT_FALSE(overlap(pods, "172.16.0.0/12")) << pods << " vs Docker's networks";
  EXPECT_TRUE(overlap("10.96.0.0/12", "10.96.0.0/16")) << "the overlap check itself";
}

// The script without its comment lines (first non-blank character #), so that a check of what
// it runs does not pass on a comment that only names it.
std::string scriptCommands(const std::string& relative) {
  const std::string text = readRepoFile(relative);
  std::string commands;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    end = end == std::string::npos ? text.size() : end + 1;
    const size_t first = text.find_first_not_of(" \t", begin);
    if (first >= end || text[first] != '#') commands.append(text, begin, end - begin);
    begin = end;
  }
  return commands;
}

TEST(KindScripts, UseTheManifestsOfThisRepository) {
  const std::string up = scriptCommands("kind/up.sh");
  // deploy/'s manifests come through controller_manifests (kind/common.sh), whose output
  // tests/ship/kind_deploy_test pins.
  for (const char* used :
       {"kind/kind-config.yaml", "controller_manifests \"$IMAGE\" \"$image_id\" | kube apply -f -",
        "helm repo add antrea https://charts.antrea.io",
        "install antrea antrea/antrea --namespace kube-system", "docker build",
        "kind load docker-image"}) {
    EXPECT_NE(up.find(used), std::string::npos) << "kind/up.sh does not use " << used;
  }
  EXPECT_NE(scriptCommands("kind/verify.sh").find("deploy/test-pod.yaml"), std::string::npos);
  EXPECT_NE(scriptCommands("kind/down.sh").find("kind delete cluster"), std::string::npos);
}

}  // namespace
}  // namespace ship

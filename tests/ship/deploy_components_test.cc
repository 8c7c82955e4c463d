// The kustomize components of deploy/components/ (CRI-O, k3s, RKE2, containerd's netns under its
// state directory) rendered over deploy/ by the real kubectl of Debian trixie (the
// ship.fetch_kubectl fixture), as a user's own kustomization would: each changes what it says,
// in one place, and nothing else of the DaemonSet.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/ship/repo_files.h"
#include "tests/support/files.h"

namespace ship {
namespace {

std::string str(const YAML::Node& node) {
  return node && node.IsScalar() ? node.as<std::string>() : "";
}

struct Rendered {
  int exit_code = -1;
  std::string output;
  YAML::Node daemonset;  // the one DaemonSet, when it rendered
};

// `kubectl kustomize` of a kustomization with deploy/ as its resource and `components`.
Rendered render(const std::vector<std::string>& components) {
  Rendered rendered;
  const std::string kubectl = fixtureKubectl();
  if (kubectl.empty()) {
    ADD_FAILURE() << "no kubectl: the ship.fetch_kubectl fixture unpacks it";
    return rendered;
  }
  const testsupport::TempDir dir("deploy-components-test");
  // kustomize takes only relative paths to other kustomizations.
  const auto relative = [&](const std::string& repo_path) {
    return std::filesystem::relative(repoPath(repo_path), dir.path()).string();
  };
  std::string kustomization = "resources: [" + relative("deploy") + "]\ncomponents: [";
  for (size_t i = 0; i < components.size(); ++i) {
    kustomization += (i ? ", " : "") + relative("deploy/components/" + components[i]);
  }
  std::ofstream(dir.file("kustomization.yaml")) << kustomization << "]\n";
  const CommandResult result =
      runCommand(shellQuote(kubectl) + " kustomize " + shellQuote(dir.path()) + " 2>&1");
  rendered.exit_code = result.exit_code;
  rendered.output = result.output;
  if (result.exit_code != 0) return rendered;
  for (const YAML::Node& doc : YAML::LoadAll(result.output)) {
    if (str(doc["kind"]) == "DaemonSet") rendered.daemonset = doc;
  }
  return rendered;
}

// The hostPath of the volume `name`, and where the container mounts it.
std::pair<std::string, std::string> volume(const YAML::Node& daemonset, const std::string& name) {
  const YAML::Node spec = daemonset["spec"]["template"]["spec"];
  std::pair<std::string, std::string> found;
  for (const YAML::Node& v : spec["volumes"]) {
    if (str(v["name"]) == name) found.first = str(v["hostPath"]["path"]);
  }
  for (const YAML::Node& m : spec["containers"][0]["volumeMounts"]) {
    if (str(m["name"]) == name) found.second = str(m["mountPath"]);
  }
  return found;
}

std::string criEndpoint(const YAML::Node& daemonset) {
  for (const YAML::Node& arg : daemonset["spec"]["template"]["spec"]["containers"][0]["args"]) {
    const std::string flag = str(arg);
    if (flag.starts_with("--cri-endpoint=")) return flag.substr(flag.find('=') + 1);
  }
  return "";
}

// Only the fields a component may change, blanked: what must be left equal to deploy/'s.
std::string withoutPaths(YAML::Node daemonset) {
  YAML::Node spec = daemonset["spec"]["template"]["spec"];
  for (YAML::Node v : spec["volumes"]) v["hostPath"]["path"] = "";
  for (YAML::Node m : spec["containers"][0]["volumeMounts"]) m["mountPath"] = "";
  return YAML::Dump(daemonset);
}

TEST(DeployComponents, EachRuntimesSocketIsOnePathAndTheContainerSeesItAtTheSamePlace) {
  const Rendered base = render({});
  ASSERT_EQ(base.exit_code, 0) << base.output;
  ASSERT_TRUE(base.daemonset) << base.output;
  EXPECT_EQ(volume(base.daemonset, "cri-socket").first, "/run/containerd/containerd.sock");
  const std::map<std::string, std::string> sockets = {
      {"cri-o", "/var/run/crio/crio.sock"},
      {"k3s", "/run/k3s/containerd/containerd.sock"},
      {"rke2", "/run/k3s/containerd/containerd.sock"},
  };
  for (const auto& [component, socket] : sockets) {
    const Rendered rendered = render({component});
    ASSERT_EQ(rendered.exit_code, 0) << component << ": " << rendered.output;
    ASSERT_TRUE(rendered.daemonset) << component;
    const auto [host_path, mount_path] = volume(rendered.daemonset, "cri-socket");
    EXPECT_EQ(host_path, socket) << component;
    EXPECT_EQ("unix://" + mount_path, criEndpoint(rendered.daemonset)) << component;
    EXPECT_EQ(withoutPaths(rendered.daemonset), withoutPaths(base.daemonset))
        << component << " changes more than the socket's path";
  }
}

TEST(DeployComponents, TheNetnsDirectoryIsMountedWhereTheNodeHasIt) {
  const Rendered base = render({});
  ASSERT_TRUE(base.daemonset) << base.output;
  EXPECT_EQ(volume(base.daemonset, "netns"),
            std::make_pair(std::string("/var/run/netns"), std::string("/var/run/netns")));
  // Combined with a runtime's socket, as k3s with netns under its state directory would be.
  const Rendered rendered = render({"k3s", "netns-under-state-dir"});
  ASSERT_EQ(rendered.exit_code, 0) << rendered.output;
  ASSERT_TRUE(rendered.daemonset) << rendered.output;
  const auto [host_path, mount_path] = volume(rendered.daemonset, "netns");
  EXPECT_EQ(host_path, "/run/containerd/io.containerd.grpc.v1.cri/netns");
  EXPECT_EQ(mount_path, host_path) << "the CRI reports netns paths as the node sees them";
  EXPECT_EQ(volume(rendered.daemonset, "cri-socket").first, "/run/k3s/containerd/containerd.sock");
  EXPECT_EQ(withoutPaths(rendered.daemonset), withoutPaths(base.daemonset));
}

TEST(DeployComponents, EveryComponentIsRenderedByThisTest) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator(repoPath("deploy/components"))) {
    found.push_back(entry.path().filename().string());
    EXPECT_TRUE(std::filesystem::exists(entry.path() / "kustomization.yaml")) << found.back();
  }
  std::sort(found.begin(), found.end());
  EXPECT_EQ(found, (std::vector<std::string>{"cri-o", "k3s", "netns-under-state-dir", "rke2"}))
      << "a new component needs its check above";
}

}  // namespace
}  // namespace ship

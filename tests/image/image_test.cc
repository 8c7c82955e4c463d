// The image that the Dockerfile builds (tests/image/build-image.sh), run the way the DaemonSet
// runs it, on the lab's real containerd: the test plays the kubelet through CRI with what
// deploy/daemonset.yaml says (image, args, env, security context, mounts, grace period), plus
// what the kubelet adds (the service account's token and CA, KUBERNETES_SERVICE_HOST/PORT, here
// pointing at the fake API server over TLS on the lab bridge's gateway). Then a whole capture:
// annotation → a pcap with the Pod's packets inside the controller's container → /readyz →
// removal → SIGTERM and exit 0 within the grace period.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/controller_harness.h"
#include "tests/lab/lab_environment.h"
#include "tests/support/files.h"

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kNode[] = "image-node";
constexpr char kAnnotation[] = "tcpdump.antrea.io";

lab::ContainerdLab& lab() { return *lab::LabEnvironment::lab(); }

std::string str(const YAML::Node& node) {
  return node && node.IsScalar() ? node.as<std::string>() : "";
}

// The DaemonSet of deploy/daemonset.yaml: its Pod spec, and its one container.
struct DaemonSetPod {
  YAML::Node spec;
  YAML::Node container;
};

DaemonSetPod loadDaemonSet() {
  const YAML::Node daemonset = YAML::LoadFile(REPO_DIR "/deploy/daemonset.yaml");
  DaemonSetPod pod{daemonset["spec"]["template"]["spec"], {}};
  for (const YAML::Node& container : pod.spec["containers"]) {
    if (str(container["name"]) == "capture-controller") pod.container = container;
  }
  return pod;
}

// Quantities as the manifest writes memory: 512Mi, 64M, or plain bytes.
int64_t bytesOf(const std::string& quantity) {
  static const std::map<std::string, int64_t> units = {{"Ki", 1LL << 10},
                                                       {"Mi", 1LL << 20},
                                                       {"Gi", 1LL << 30},
                                                       {"k", 1000},
                                                       {"M", 1000000},
                                                       {"G", 1000000000},
                                                       {"", 1}};
  const size_t digits = quantity.find_first_not_of("0123456789");
  const std::string unit = digits == std::string::npos ? "" : quantity.substr(digits);
  return std::stoll(quantity.substr(0, digits)) * units.at(unit);
}

// $(NAME) in a container's args, as the kubelet expands it from the container's env; $$ is $.
std::string expand(const std::string& arg, const std::map<std::string, std::string>& env) {
  std::string out;
  for (size_t i = 0; i < arg.size(); ++i) {
    if (arg.compare(i, 2, "$$") == 0) {
      out += '$';
      ++i;
    } else if (arg.compare(i, 2, "$(") == 0 && arg.find(')', i) != std::string::npos &&
               env.contains(arg.substr(i + 2, arg.find(')', i) - i - 2))) {
      const size_t close = arg.find(')', i);
      out += env.at(arg.substr(i + 2, close - i - 2));
      i = close;
    } else {
      out += arg[i];
    }
  }
  return out;
}

// A hostPath of the manifest as it exists on this machine: the lab's containerd has its own
// socket; everything else (the netns directory) is the host's own.
std::string hostPathHere(const std::string& path) {
  if (path == "/run/containerd/containerd.sock") {
    return lab().endpoint().substr(std::string("unix://").size());
  }
  return path;
}

// What the kubelet makes of the DaemonSet's container, on `node`, with the API server at
// `api_host:api_port` and the service account's files in `service_account_dir`.
runtime::v1::ContainerConfig containerConfig(const DaemonSetPod& pod,
                                             const std::string& service_account_dir,
                                             const std::string& api_host, int api_port) {
  const YAML::Node& container = pod.container;
  runtime::v1::ContainerConfig config;
  config.mutable_metadata()->set_name(str(container["name"]));
  config.mutable_image()->set_image(str(container["image"]));
  for (const YAML::Node& arg : container["command"]) config.add_command(str(arg));
  config.set_log_path(str(container["name"]) + "/0.log");

  std::map<std::string, std::string> env;
  for (const YAML::Node& var : container["env"]) {
    if (var["value"]) {
      env[str(var["name"])] = str(var["value"]);
    } else if (str(var["valueFrom"]["fieldRef"]["fieldPath"]) == "spec.nodeName") {
      env[str(var["name"])] = kNode;
    } else {
      ADD_FAILURE() << "the test does not know how to fill env " << str(var["name"]);
    }
  }
  // The kubelet's service links: how a Pod finds the API server (k8s::loadClusterConfig).
  env["KUBERNETES_SERVICE_HOST"] = api_host;
  env["KUBERNETES_SERVICE_PORT"] = std::to_string(api_port);
  for (const auto& [name, value] : env) {
    auto* kv = config.add_envs();
    kv->set_key(name);
    kv->set_value(value);
  }
  for (const YAML::Node& arg : container["args"]) config.add_args(expand(str(arg), env));

  for (const YAML::Node& mount : container["volumeMounts"]) {
    YAML::Node volume;
    for (const YAML::Node& v : pod.spec["volumes"]) {
      if (str(v["name"]) == str(mount["name"])) volume = v;
    }
    EXPECT_TRUE(volume["hostPath"]) << "volume " << str(mount["name"]) << " is not a hostPath";
    const std::string host_path = hostPathHere(str(volume["hostPath"]["path"]));
    if (str(volume["hostPath"]["type"]) == "DirectoryOrCreate") fs::create_directories(host_path);
    auto* m = config.add_mounts();
    m->set_container_path(str(mount["mountPath"]));
    m->set_host_path(host_path);
    m->set_readonly(mount["readOnly"] && mount["readOnly"].as<bool>());
    const std::string propagation = str(mount["mountPropagation"]);
    m->set_propagation(propagation == "HostToContainer" ? runtime::v1::PROPAGATION_HOST_TO_CONTAINER
                       : propagation == "Bidirectional" ? runtime::v1::PROPAGATION_BIDIRECTIONAL
                                                        : runtime::v1::PROPAGATION_PRIVATE);
  }
  // The service account's projected volume, as the kubelet mounts it in every Pod.
  auto* token = config.add_mounts();
  token->set_container_path("/var/run/secrets/kubernetes.io/serviceaccount");
  token->set_host_path(service_account_dir);
  token->set_readonly(true);

  auto* linux = config.mutable_linux();
  if (const YAML::Node memory = container["resources"]["limits"]["memory"]) {
    linux->mutable_resources()->set_memory_limit_in_bytes(bytesOf(str(memory)));
  }
  const YAML::Node& sc = container["securityContext"];
  auto* security = linux->mutable_security_context();
  security->set_privileged(sc["privileged"] && sc["privileged"].as<bool>());
  if (sc["runAsUser"]) security->mutable_run_as_user()->set_value(sc["runAsUser"].as<int64_t>());
  security->set_readonly_rootfs(sc["readOnlyRootFilesystem"] &&
                                sc["readOnlyRootFilesystem"].as<bool>());
  for (const YAML::Node& cap : sc["capabilities"]["add"]) {
    security->mutable_capabilities()->add_add_capabilities(str(cap));
  }
  for (const YAML::Node& cap : sc["capabilities"]["drop"]) {
    security->mutable_capabilities()->add_drop_capabilities(str(cap));
  }
  const std::string seccomp = str(sc["seccompProfile"]["type"]);
  EXPECT_EQ(seccomp, "RuntimeDefault") << "the test maps only RuntimeDefault";
  security->mutable_seccomp()->set_profile_type(runtime::v1::SecurityProfile::RuntimeDefault);
  // Not hostPID, not hostNetwork: the kubelet's namespace options for such a Pod.
  auto* namespaces = security->mutable_namespace_options();
  namespaces->set_network(runtime::v1::POD);
  namespaces->set_pid(runtime::v1::CONTAINER);
  namespaces->set_ipc(runtime::v1::POD);
  return config;
}

// A command's stdout in the controller's container; fails the test on an error.
class Exec {
 public:
  explicit Exec(std::string container) : container_(std::move(container)) {}
  absl::StatusOr<runtime::v1::ExecSyncResponse> run(const std::vector<std::string>& cmd) const {
    return lab().kubelet().execSync(container_, cmd, seconds(20));
  }
  // bash's own /dev/tcp: the image has no curl, and a probe must not need one.
  absl::StatusOr<std::string> httpGet(const std::string& path) const {
    auto answer = run({"bash", "-c",
                       absl::StrCat("exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET ", path,
                                    " HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3")});
    if (!answer.ok()) return answer.status();
    return answer->stdout();
  }
  std::string captureFiles(const std::string& pattern) const {
    auto answer =
        run({"bash", "-c", "shopt -s nullglob; for f in " + pattern + "; do echo $f; done"});
    return answer.ok() ? answer->stdout() : "exec failed: " + answer.status().ToString();
  }

 private:
  std::string container_;
};

bool rootIsShared() {
  std::istringstream mounts(testsupport::readFile("/proc/self/mountinfo"));
  for (std::string line; std::getline(mounts, line);) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - ..."
    std::istringstream fields(line);
    std::string id, parent, device, root, point, options, optional;
    fields >> id >> parent >> device >> root >> point >> options;
    if (point != "/") continue;
    while (fields >> optional && optional != "-") {
      if (optional.starts_with("shared:")) return true;
    }
    return false;
  }
  return false;
}

class ImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    E2E_REQUIRE_LAB();
    ASSERT_TRUE(fs::exists(IMAGE_ARCHIVE))
        << IMAGE_ARCHIVE
        << " is missing: ctest's image.build (tests/image/build-image.sh) makes it";
    dir_ = std::make_unique<testsupport::TempDir>("image-test");
    // The root mount shared, as on every node (systemd makes it so at boot; this machine's init
    // may not): containerd allows the DaemonSet's HostToContainer (rslave) mount of
    // /var/run/netns only from a shared or slave mount, and through it the controller sees the
    // netns that are created after it started.
    if (!rootIsShared()) {
      ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_SHARED, nullptr), 0);
    }
  }

  std::unique_ptr<testsupport::TempDir> dir_;
};

TEST_F(ImageTest, RunsAsTheDaemonSetRunsItAndCapturesAPod) {
  ASSERT_TRUE(lab().importImage(IMAGE_ARCHIVE).ok());
  const DaemonSetPod daemonset = loadDaemonSet();
  ASSERT_TRUE(daemonset.container) << "no container capture-controller in the DaemonSet";
  const std::string image = str(daemonset.container["image"]);
  auto image_status = lab().kubelet().imageStatus(image);
  ASSERT_TRUE(image_status.ok() && image_status->has_image())
      << image << " is not in the runtime after the import";

  // The controller's Pod, as the DaemonSet's Pod on this node. Its sandbox comes first: the
  // bridge's gateway address, where the fake API server listens, exists from the first one on.
  lab::PodSpec controller_pod = lab::podNamed("capture-controller-x7k2p");
  controller_pod.namespace_ = "kube-system";
  controller_pod.uid = lab::ContainerdLab::newPodUid();
  auto sandbox = lab().runPodSandbox(controller_pod);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();

  // The API server, where the controller's container reaches it: the bridge's gateway.
  auto api = e2e::ApiServer::start(dir_->path(), lab().gateway());
  ASSERT_TRUE(api.ok()) << api.status();
  fakeapi::FakeApiServer& fake = (*api)->fake();
  const std::string sa_dir = dir_->path() + "/serviceaccount";
  fs::create_directories(sa_dir);
  fs::copy_file((*api)->caCertPath(), sa_dir + "/ca.crt");
  std::ofstream(sa_dir + "/token") << (*api)->token();
  std::ofstream(sa_dir + "/namespace") << "kube-system";

  // A Pod with traffic: the host pings it.
  const std::string uid = fake.createPod("default", "traffic", kNode);
  lab::PodSpec traffic = lab::podNamed("traffic");
  traffic.uid = uid;
  auto target = lab().runPodSandbox(traffic);
  ASSERT_TRUE(target.ok()) << target.status();
  e2e::Pinger pinger;
  pinger.add(target->ip);

  const runtime::v1::ContainerConfig config =
      containerConfig(daemonset, sa_dir, lab().gateway(), fake.port());
  auto container =
      lab().kubelet().createContainer(sandbox->id, config, lab().sandboxConfig(controller_pod));
  ASSERT_TRUE(container.ok()) << container.status();
  ASSERT_TRUE(lab().kubelet().startContainer(*container).ok());
  const std::string log_path =
      lab().sandboxConfig(controller_pod).log_directory() + "/" + config.log_path();
  auto containerLog = [&] { return testsupport::readFile(log_path); };
  const Exec exec(*container);

  // Ready: the Pod list synced over TLS with the service account, the runtime answering.
  std::string readyz;
  EXPECT_TRUE(e2e::waitUntil(
      [&] {
        auto answer = exec.httpGet("/readyz");
        readyz = answer.ok() ? *answer : answer.status().ToString();
        return readyz.starts_with("HTTP/1.1 200");
      },
      seconds(60)))
      << "/readyz inside the container: " << readyz << "\ncontainer log:\n"
      << containerLog();

  auto version = exec.run({"capture-controller", "--version"});
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_TRUE(std::regex_search(
      version->stdout(), std::regex(R"(capture-controller test \(git [0-9a-f]{12}(-dirty)?\))")))
      << version->stdout();

  // A capture, in the Pod's netns, of the Pod's packets, written inside the container.
  fake.setAnnotation("default", "traffic", kAnnotation, "2");
  std::vector<e2e::Packet> packets;
  const std::string pcap = dir_->path() + "/copied.pcap0";
  const bool captured = e2e::waitUntil(
      [&] {
        auto file = exec.run({"cat", "/capture-traffic.pcap0"});
        if (!file.ok() || file->exit_code() != 0) return false;
        std::ofstream(pcap, std::ios::binary | std::ios::trunc) << file->stdout();
        auto read = e2e::readPcap(pcap);
        if (!read.ok()) return false;
        packets = *read;
        return !packets.empty();
      },
      seconds(30));
  ASSERT_TRUE(captured) << "no packet in /capture-traffic.pcap0 inside the container; files: "
                        << exec.captureFiles("/capture-*") << "\nEvents: "
                        << testing::PrintToString((*api)->messages(uid, "CaptureFailed"))
                        << "\ncontainer log:\n"
                        << containerLog();
  for (const e2e::Packet& packet : packets) {
    EXPECT_TRUE(packet.source == target->ip || packet.destination == target->ip)
        << packet.source << " > " << packet.destination << " is not the Pod's traffic";
  }
  EXPECT_EQ(exec.captureFiles("/capture-*"), "/capture-traffic.pcap0\n");
  const auto started = (*api)->messages(uid, "CaptureStarted");
  ASSERT_EQ(started.size(), 1u);
  EXPECT_NE(started[0].find(target->id), std::string::npos) << started[0];

  // Removal deletes the files.
  fake.removeAnnotation("default", "traffic", kAnnotation);
  EXPECT_TRUE(e2e::waitUntil([&] { return exec.captureFiles("/capture-*").empty(); }, seconds(30)))
      << exec.captureFiles("/capture-*");
  EXPECT_TRUE(e2e::waitUntil([&] { return !(*api)->messages(uid, "CaptureStopped").empty(); },
                             seconds(30)));

  // A capture running when the kubelet stops the container: SIGTERM (the image's stop signal)
  // through tini to the controller, which stops tcpdump and exits 0 within the grace period.
  fake.setAnnotation("default", "traffic", kAnnotation, "1");
  ASSERT_TRUE(e2e::waitUntil([&] { return !exec.captureFiles("/capture-traffic.pcap").empty(); },
                             seconds(30)));
  const seconds grace(daemonset.spec["terminationGracePeriodSeconds"].as<int>());
  const auto stop_started = std::chrono::steady_clock::now();
  ASSERT_TRUE(lab().kubelet().stopContainer(*container, grace).ok());
  const auto stopped_after = std::chrono::steady_clock::now() - stop_started;
  auto status = lab().kubelet().containerStatus(*container);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->state(), runtime::v1::CONTAINER_EXITED);
  EXPECT_EQ(status->exit_code(), 0)
      << status->reason() << " " << status->message() << "\ncontainer log:\n"
      << containerLog();
  EXPECT_LT(stopped_after, grace);
  EXPECT_NE(containerLog().find("stopped"), std::string::npos) << containerLog();
  EXPECT_TRUE(e2e::tcpdumpsWriting("/capture-traffic.pcap").empty())
      << "a tcpdump outlived its controller";
  EXPECT_TRUE(lab().kubelet().removeContainer(*container).ok());
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lab::LabEnvironment);
  return RUN_ALL_TESTS();
}

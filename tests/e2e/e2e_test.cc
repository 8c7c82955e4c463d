// The real capture-controller binary, end to end: a real containerd (tests/lab) that plays the
// kubelet's sandboxes, the fake kube-apiserver over TLS with a bearer token (tests/fakeapi), the
// real tcpdump, and traffic pinged from the host. One lab for the whole binary; each test runs
// its own controller, API server and capture directory, and its own Pods (fresh UIDs).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <thread>

#include "cri/cri_sandbox_resolver.h"
#include "tests/e2e/controller_harness.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/lab/command.h"
#include "tests/lab/icmp.h"
#include "tests/lab/lab_environment.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/files.h"

namespace e2e {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kAnnotation[] = "tcpdump.antrea.io";
constexpr char kNode[] = "e2e-node";
// Generous for a shared 2-core machine; conditions usually hold within a second or two.
constexpr milliseconds kDeadline = 30s;

struct TestPod {
  std::string namespace_;
  std::string name;
  std::string uid;
  lab::Sandbox sandbox = {};
  std::string netns = {};  // as containerd reports it
};

class ControllerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    E2E_REQUIRE_LAB();
    dir_ = testsupport::makeTempDir("capture-e2e");
    ASSERT_FALSE(dir_.empty());
    capture_dir_ = dir_ + "/captures";
    std::filesystem::create_directory(capture_dir_);
    std::filesystem::create_directory(dir_ + "/api");
    auto api = ApiServer::start(dir_ + "/api");
    ASSERT_TRUE(api.ok()) << api.status();
    api_ = std::move(*api);
    pinger_ = std::make_unique<Pinger>();
  }

  void TearDown() override {
    pinger_.reset();
    if (HasFailure() && controller_ != nullptr) {
      const std::string log = controller_->log();
      std::cerr << "---- controller log (last 6000 bytes) ----\n"
                << log.substr(log.size() > 6000 ? log.size() - 6000 : 0) << "----\n";
    }
    controller_.reset();
    for (const std::string& id : sandboxes_) {
      (void)lab().stopPodSandbox(id);
      (void)lab().removePodSandbox(id);
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  lab::ContainerdLab& lab() { return *lab::LabEnvironment::lab(); }
  fakeapi::FakeApiServer& api() { return api_->fake(); }

  // The controller's flags for this test; `changed` replaces some of them by name.
  std::vector<std::string> controllerArgs(std::map<std::string, std::string> changed = {}) {
    std::map<std::string, std::string> flags = {
        {"--node-name", kNode},
        {"--cri-endpoint", lab().endpoint()},
        {"--kubeconfig", api_->kubeconfigPath()},
        {"--capture-dir", capture_dir_},
        {"--http-address", "127.0.0.1:0"},
        {"--tcpdump", "/usr/bin/tcpdump"},
        {"--resync-period", "1s"},
        {"--v", "1"},
    };
    for (auto& [flag, value] : changed) flags[flag] = value;
    std::vector<std::string> args;
    for (const auto& [flag, value] : flags) args.push_back(flag + "=" + value);
    return args;
  }

  // Runs the binary to completion, for its short-lived commands and failures.
  lab::CommandResult runBinary(std::vector<std::string> args) {
    args.insert(args.begin(), CAPTURE_CONTROLLER);
    // Not the runner's environment: a NODE_NAME, KUBECONFIG or ~/.kube/config there would
    // change what the binary does (and could point it at a real cluster).
    auto result = lab::runCommand(
        args, 20s, std::vector<std::string>{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir_});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : lab::CommandResult{};
  }

  // Starts the controller and waits until it serves HTTP; `ready` also waits for /readyz.
  void startController(std::vector<std::string> args, bool ready = true) {
    const std::string log = dir_ + "/controller-" + std::to_string(++starts_) + ".log";
    auto started = ControllerProcess::start(args, log);
    ASSERT_TRUE(started.ok()) << started.status();
    controller_ = std::move(*started);
    const std::optional<int> port = controller_->waitForHttpPort(kDeadline);
    ASSERT_TRUE(port) << "the controller did not log its HTTP address";
    port_ = *port;
    if (ready) {
      ASSERT_TRUE(waitUntil(
          [&] {
            auto answer = httpGet(port_, "/readyz");
            return answer.ok() && answer->status == 200;
          },
          kDeadline))
          << "/readyz never passed";
    }
  }
  void startController() { startController(controllerArgs()); }

  // A Pod as the kubelet makes one: in the API first, then its sandbox, then pinged (unless
  // `ping` is false: a hundred Pods pinged every 50 ms would keep a core busy).
  TestPod runPod(const std::string& namespace_, const std::string& name, bool host_network = false,
                 bool ping = true) {
    TestPod pod{namespace_, name, api().createPod(namespace_, name, kNode, {}, host_network)};
    auto sandbox = lab().runPodSandbox(lab::PodSpec{name, namespace_, pod.uid, 0, host_network});
    EXPECT_TRUE(sandbox.ok()) << sandbox.status();
    if (!sandbox.ok()) return pod;
    pod.sandbox = *sandbox;
    sandboxes_.push_back(sandbox->id);
    if (!host_network && ping) {
      pod.netns = netnsOf(pod.uid);
      pinger_->add(sandbox->ip);
    }
    return pod;
  }

  std::string netnsOf(const std::string& uid) {
    cri::CriSandboxResolver resolver(lab().client());
    auto info = resolver.resolve(uid);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->netns_path : "";
  }

  void annotate(const TestPod& pod, const std::string& value) {
    api().setAnnotation(pod.namespace_, pod.name, kAnnotation, value);
  }

  // The Pod's entry in /captures, if it has one.
  std::optional<nlohmann::json> captureOf(const TestPod& pod) {
    auto answer = httpGet(port_, "/captures");
    if (!answer.ok() || answer->status != 200) return std::nullopt;
    const auto document = nlohmann::json::parse(answer->body, nullptr, false);
    if (document.is_discarded()) return std::nullopt;
    for (const nlohmann::json& capture : document.value("captures", nlohmann::json::array())) {
      if (capture.value("podUid", "") == pod.uid) return capture;
    }
    return std::nullopt;
  }

  // One field of the Pod's /captures entry; null when it has none.
  nlohmann::json captureField(const TestPod& pod, const std::string& key) {
    const std::optional<nlohmann::json> capture = captureOf(pod);
    return capture && capture->contains(key) ? capture->at(key) : nlohmann::json();
  }

  // Waits until the Pod's capture runs, in this sandbox when one is given, with a pid other
  // than `not_pid`; returns its tcpdump pid (0 on timeout).
  pid_t waitForRunningCapture(const TestPod& pod, const std::string& sandbox_id = "",
                              pid_t not_pid = 0) {
    pid_t pid = 0;
    waitUntil(
        [&] {
          auto capture = captureOf(pod);
          if (!capture || capture->value("state", "") != "Running") return false;
          if (!sandbox_id.empty() && capture->value("sandboxId", "") != sandbox_id) return false;
          const pid_t running = capture->value("pid", 0);
          if (running == not_pid || !processLives(running)) return false;
          // The launcher reports the child before its exec (and so before its setns): until it
          // is tcpdump, it may still be in the controller's netns.
          if (testsupport::readFile("/proc/" + std::to_string(running) + "/comm") != "tcpdump\n") {
            return false;
          }
          pid = running;
          return true;
        },
        kDeadline);
    return pid;
  }

  bool waitForEvent(const TestPod& pod, const std::string& reason, size_t count = 1) {
    return waitUntil([&] { return api_->events(pod.uid, reason).size() >= count; }, kDeadline);
  }

  // Waits until the file holds a packet from or to `ip`.
  bool waitForPacketsOf(const std::string& file, const std::string& ip) {
    return waitUntil(
        [&] {
          auto packets = readPcap(file);
          if (!packets.ok()) return false;
          return std::any_of(packets->begin(), packets->end(), [&](const Packet& p) {
            return p.source == ip || p.destination == ip;
          });
        },
        kDeadline);
  }

  // Annotates the Pod with `files` and waits until its tcpdump runs and its first file holds
  // packets of the Pod's IP; returns the tcpdump pid (0, and a failure, when that never happens).
  pid_t startCapture(const TestPod& pod, int files) {
    annotate(pod, std::to_string(files));
    const pid_t pid = waitForRunningCapture(pod);
    EXPECT_NE(pid, 0) << pod.namespace_ << "/" << pod.name << ": no tcpdump runs";
    const std::string base = captureOf(pod).value_or(nlohmann::json{}).value("filePath", "");
    // tcpdump -W N numbers its files with the digits of N-1, none at all when N is 1.
    const std::string first =
        files == 1 ? base : base + std::string(std::to_string(files - 1).size(), '0');
    EXPECT_TRUE(waitForPacketsOf(first, pod.sandbox.ip))
        << "no packet of " << pod.sandbox.ip << " in " << first;
    return pid;
  }

  // The files of the capture directory whose names start with `prefix`.
  std::set<std::string> filesStartingWith(const std::string& prefix) {
    return filesIn(capture_dir_, prefix);
  }

  bool waitUntilGone(pid_t pid) {
    return waitUntil([&] { return !processLives(pid); }, kDeadline);
  }

  std::string file(const std::string& name) const { return capture_dir_ + "/" + name; }

  std::string dir_;
  std::string capture_dir_;
  std::unique_ptr<ApiServer> api_;
  std::unique_ptr<Pinger> pinger_;
  std::unique_ptr<ControllerProcess> controller_;
  int port_ = 0;
  int starts_ = 0;
  std::vector<std::string> sandboxes_;
};

ino_t inodeOf(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

ino_t netnsOfProcess(pid_t pid) { return inodeOf("/proc/" + std::to_string(pid) + "/ns/net"); }

TEST_F(ControllerE2E, AnnotationStartsACaptureOfThePodsTrafficInItsNetns) {
  startController();
  const TestPod web = runPod("default", "web");
  annotate(web, "3");

  EXPECT_TRUE(waitForPacketsOf(file("capture-web.pcap0"), web.sandbox.ip))
      << "no packet of " << web.sandbox.ip << " in capture-web.pcap0";
  ASSERT_TRUE(waitForEvent(web, "CaptureStarted"));
  const nlohmann::json started = api_->events(web.uid, "CaptureStarted").at(0);
  EXPECT_EQ(started.value("type", ""), "Normal");
  EXPECT_THAT(started.value("message", ""),
              AllOf(HasSubstr(file("capture-web.pcap0")), HasSubstr("3 files"),
                    HasSubstr(web.sandbox.id), HasSubstr(web.netns)));

  const pid_t pid = waitForRunningCapture(web);
  ASSERT_NE(pid, 0);
  EXPECT_THAT(tcpdumpChildrenOf(controller_->pid()), ElementsAre(pid));
  EXPECT_EQ(netnsOfProcess(pid), inodeOf(web.netns))
      << "tcpdump is not in the Pod's network namespace";
  EXPECT_NE(netnsOfProcess(pid), netnsOfProcess(::getpid()));
}

TEST_F(ControllerE2E, AStaticPodIsCapturedThroughItsMirrorPodsAnnotation) {
  startController();
  // The kubelet runs a static Pod from a manifest and labels its sandbox with the manifest's
  // UID (a hash); the API server has only the mirror Pod, whose own UID differs and whose
  // kubernetes.io/config.mirror names the static one.
  const std::string static_uid = "6e2b4b0c1f0a49f2b0d0c3a6f5e4d3c2";
  TestPod etcd{"kube-system", "etcd-" + std::string(kNode),
               api().createPod("kube-system", "etcd-" + std::string(kNode), kNode,
                               {{"kubernetes.io/config.mirror", static_uid}})};
  ASSERT_NE(etcd.uid, static_uid);
  auto sandbox = lab().runPodSandbox(lab::PodSpec{etcd.name, etcd.namespace_, static_uid, 0});
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  sandboxes_.push_back(sandbox->id);
  etcd.sandbox = *sandbox;
  etcd.netns = netnsOf(static_uid);
  pinger_->add(sandbox->ip);
  annotate(etcd, "1");
  const std::string pcap = file("capture-" + etcd.name + ".pcap");
  EXPECT_TRUE(waitForPacketsOf(pcap, sandbox->ip)) << "no packet of " << sandbox->ip;
  ASSERT_TRUE(waitForEvent(etcd, "CaptureStarted"));
  EXPECT_THAT(api_->messages(etcd.uid, "CaptureStarted")[0],
              AllOf(HasSubstr(sandbox->id), HasSubstr(etcd.netns)));
  const pid_t pid = waitForRunningCapture(etcd);
  ASSERT_NE(pid, 0);
  EXPECT_EQ(netnsOfProcess(pid), inodeOf(etcd.netns));
  EXPECT_THAT(api_->messages(etcd.uid, "CapturePending"), IsEmpty());
}

TEST_F(ControllerE2E, RemovingTheAnnotationStopsTcpdumpAndDeletesOnlyItsFiles) {
  startController();
  const TestPod web = runPod("default", "web");
  const TestPod web1 = runPod("default", "web-1");
  const pid_t web_pid = startCapture(web, 2);
  const pid_t web1_pid = startCapture(web1, 2);
  ASSERT_FALSE(HasFailure());

  api().removeAnnotation(web.namespace_, web.name, kAnnotation);
  EXPECT_TRUE(waitUntilGone(web_pid));
  EXPECT_TRUE(waitUntil([&] { return filesStartingWith("capture-web.pcap").empty(); }, kDeadline))
      << "left: " << ::testing::PrintToString(filesStartingWith("capture-web.pcap"));
  ASSERT_TRUE(waitForEvent(web, "CaptureStopped"));
  EXPECT_THAT(api_->messages(web.uid, "CaptureStopped").at(0),
              AllOf(HasSubstr("annotation tcpdump.antrea.io was removed"),
                    HasSubstr(file("capture-web.pcap0"))));

  EXPECT_THAT(tcpdumpChildrenOf(controller_->pid()), ElementsAre(web1_pid));
  EXPECT_THAT(filesStartingWith("capture-web-1.pcap"), Contains("capture-web-1.pcap0"));
  EXPECT_TRUE(captureOf(web1).has_value());
  EXPECT_FALSE(captureOf(web).has_value());
}

TEST_F(ControllerE2E, TheCaptureFollowsAReplacedSandbox) {
  startController();
  const TestPod web = runPod("default", "web");
  const pid_t old_pid = startCapture(web, 1);  // one file, no rotation suffix
  ASSERT_FALSE(HasFailure());
  EXPECT_THAT(filesIn(capture_dir_), ElementsAre("capture-web.pcap"));

  // What the kubelet does when a sandbox dies: a new one for the same Pod, attempt + 1.
  ASSERT_TRUE(lab().stopPodSandbox(web.sandbox.id).ok());
  auto replaced = lab().runPodSandbox(lab::PodSpec{web.name, web.namespace_, web.uid, 1});
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  sandboxes_.push_back(replaced->id);
  pinger_->remove(web.sandbox.ip);
  pinger_->add(replaced->ip);
  const std::string new_netns = netnsOf(web.uid);
  ASSERT_NE(new_netns, web.netns);

  const pid_t new_pid = waitForRunningCapture(web, replaced->id, old_pid);
  ASSERT_NE(new_pid, 0);
  EXPECT_FALSE(processLives(old_pid));
  EXPECT_EQ(netnsOfProcess(new_pid), inodeOf(new_netns));
  ASSERT_TRUE(waitForEvent(web, "CaptureRestarted"));
  EXPECT_THAT(api_->messages(web.uid, "CaptureRestarted").back(),
              AllOf(HasSubstr(web.sandbox.id), HasSubstr(replaced->id), HasSubstr(new_netns)));
  EXPECT_TRUE(waitForPacketsOf(file("capture-web.pcap"), replaced->ip))
      << "no packet of the new sandbox's IP " << replaced->ip;
  EXPECT_THAT(api_->messages(web.uid, "CaptureFailed"), IsEmpty())
      << "tcpdump ending with its sandbox is the sandbox's replacement, not a failure";
}

TEST_F(ControllerE2E, DeletingThePodStopsTcpdumpAndDeletesItsFiles) {
  startController();
  const TestPod web = runPod("default", "web");
  const pid_t pid = startCapture(web, 2);
  ASSERT_FALSE(HasFailure());

  api().deletePod(web.namespace_, web.name);
  EXPECT_TRUE(waitUntilGone(pid));
  EXPECT_TRUE(waitUntil([&] { return filesIn(capture_dir_).empty(); }, kDeadline))
      << "left: " << ::testing::PrintToString(filesIn(capture_dir_));
  EXPECT_THAT(tcpdumpChildrenOf(controller_->pid()), IsEmpty());
}

TEST_F(ControllerE2E, AfterASigkillNoTcpdumpOutlivesTheControllerAndARestartCleansUp) {
  startController();
  const TestPod a = runPod("default", "a");
  const TestPod b = runPod("default", "b");
  const pid_t a_pid = startCapture(a, 2);
  startCapture(b, 2);
  ASSERT_FALSE(HasFailure());

  // a's second file, which a fresh tcpdump writes only after 1 MB of packets.
  std::ofstream(file("capture-a.pcap1")) << "from the killed controller's run";
  controller_->signal(SIGKILL);
  ASSERT_EQ(controller_->waitForExit(kDeadline), 128 + SIGKILL);
  EXPECT_TRUE(waitUntil([&] { return tcpdumpsWritingTo(capture_dir_).empty(); }, kDeadline))
      << "orphaned tcpdump: " << ::testing::PrintToString(tcpdumpsWritingTo(capture_dir_));

  // While no controller runs, b no longer wants a capture: its files belong to nobody.
  api().removeAnnotation(b.namespace_, b.name, kAnnotation);
  startController();
  const pid_t a_again = waitForRunningCapture(a, a.sandbox.id, a_pid);
  ASSERT_NE(a_again, 0);
  EXPECT_THAT(tcpdumpsWritingTo(capture_dir_), ElementsAre(a_again));
  EXPECT_THAT(filesStartingWith("capture-b"), IsEmpty());
  EXPECT_THAT(filesStartingWith("capture-a"), Not(Contains("capture-a.pcap1")))
      << "a wanted capture starts afresh: the start deletes its old files too";
  for (const std::string& name : filesIn(capture_dir_)) {
    EXPECT_TRUE(name.starts_with("capture-a.pcap")) << name << " belongs to no capture";
  }
  EXPECT_FALSE(captureOf(b).has_value());
}

TEST_F(ControllerE2E, AKilledTcpdumpIsRestartedAndReported) {
  startController();
  const TestPod web = runPod("default", "web");
  const pid_t first = startCapture(web, 2);
  ASSERT_FALSE(HasFailure());

  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const pid_t second = waitForRunningCapture(web, web.sandbox.id, first);
  ASSERT_NE(second, 0);
  EXPECT_THAT(tcpdumpChildrenOf(controller_->pid()), ElementsAre(second));
  ASSERT_TRUE(waitForEvent(web, "CaptureFailed"));
  const nlohmann::json failed = api_->events(web.uid, "CaptureFailed").at(0);
  EXPECT_EQ(failed.value("type", ""), "Warning");
  EXPECT_THAT(failed.value("message", ""), HasSubstr("killed by signal 9"));
  ASSERT_TRUE(waitForEvent(web, "CaptureRestarted"));
  EXPECT_EQ(captureField(web, "restarts"), 1);
}

TEST_F(ControllerE2E, SigtermStopsEveryTcpdumpAndExitsZero) {
  startController();
  const TestPod a = runPod("default", "a");
  const TestPod b = runPod("default", "b");
  const pid_t a_pid = startCapture(a, 2);
  const pid_t b_pid = startCapture(b, 3);
  ASSERT_FALSE(HasFailure());

  controller_->signal(SIGTERM);
  EXPECT_EQ(controller_->waitForExit(15s), 0);
  EXPECT_FALSE(processLives(a_pid));
  EXPECT_FALSE(processLives(b_pid));
  EXPECT_THAT(tcpdumpsWritingTo(capture_dir_), IsEmpty());
  // The files stay until the next start (which deletes them).
  EXPECT_THAT(filesStartingWith("capture-a.pcap"), Contains("capture-a.pcap0"));
}

TEST_F(ControllerE2E, SigtermWithAFullNodeOfStuckTcpdumpsExitsWithinOneGracePeriod) {
  // 110 captures (the kubelet's maxPods) whose tcpdump ignores SIGTERM, as one stuck in a write
  // might: every one gets SIGTERM at once, SIGKILL after the 5 s grace, and the controller exits
  // 0 within that grace plus a second, whatever the number of captures.
  const std::string stand_in = dir_ + "/tcpdump-ignoring-sigterm";
  writeTcpdumpStandIn(stand_in, ": > \"${file}0\"\ntrap '' TERM\nexec sleep 100000");
  startController(controllerArgs({{"--tcpdump", stand_in}}));
  std::vector<TestPod> pods;
  for (int i = 0; i < 110; ++i) {
    pods.push_back(runPod("default", "stuck-" + std::to_string(i), false, /*ping=*/false));
    annotate(pods.back(), "1");
  }
  ASSERT_FALSE(HasFailure());
  std::vector<pid_t> pids;
  ASSERT_TRUE(waitUntil(
      [&] {
        pids.clear();
        for (const TestPod& pod : pods) {
          const auto capture = captureOf(pod);
          if (!capture || capture->value("state", "") != "Running") return false;
          pids.push_back(capture->value("pid", 0));
        }
        return true;
      },
      120s))
      << "not every capture ran";

  const auto asked = Clock::now();
  controller_->signal(SIGTERM);
  const std::optional<int> code = controller_->waitForExit(60s);
  const auto took = Clock::now() - asked;
  EXPECT_EQ(code, 0);
  EXPECT_LT(took, 6s) << "5 s of grace for every tcpdump at once, not one after another";
  for (pid_t pid : pids) EXPECT_FALSE(processLives(pid)) << "pid " << pid << " outlived it";
  EXPECT_THAT(controller_->log(), HasSubstr("110 tcpdump processes still run"));
}

TEST_F(ControllerE2E, AFrozenContainerdHoldsNoChangeThatDoesNotNeedIt) {
  startController();
  std::vector<TestPod> pods;
  for (int i = 0; i < 20; ++i) {
    pods.push_back(runPod("default", "busy-" + std::to_string(i), false, /*ping=*/false));
    annotate(pods.back(), "1");
  }
  for (const TestPod& pod : pods) ASSERT_NE(waitForRunningCapture(pod), 0) << pod.name;
  const pid_t old_pid = captureField(pods[3], "pid");
  const pid_t stopped_pid = captureField(pods[7], "pid");

  // containerd stops answering, as with SIGSTOP: resyncs and look-ups hang to their deadline.
  ASSERT_EQ(::kill(lab().containerdPid(), SIGSTOP), 0);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }
  } thaw{lab().containerdPid()};
  // A resync asked after the freeze: its call now hangs on the runtime.
  const auto resyncs = [&] {
    const std::string log = controller_->log();
    size_t count = 0;
    for (size_t at = 0; (at = log.find("resync: asking the runtime", at)) != std::string::npos;
         ++at) {
      ++count;
    }
    return count;
  };
  const size_t before = resyncs();
  ASSERT_TRUE(waitUntil([&] { return resyncs() > before; }, kDeadline));

  const auto asked = Clock::now();
  annotate(pods[3], "3");  // a new N: restarted in the sandbox it is bound to
  api().removeAnnotation(pods[7].namespace_, pods[7].name, kAnnotation);  // an end
  const pid_t new_pid = waitForRunningCapture(pods[3], "", old_pid);
  const bool gone = waitUntil(
      [&] { return !processLives(stopped_pid) && filesStartingWith("capture-busy-7.").empty(); },
      kDeadline);
  const auto took = Clock::now() - asked;
  EXPECT_NE(new_pid, 0);
  EXPECT_TRUE(gone);
  EXPECT_LT(took, 1s) << "a change that needs no runtime waited for the frozen one";
  EXPECT_EQ(captureField(pods[3], "files"), 3);
}

TEST_F(ControllerE2E, InvalidAnnotationsAndHostNetworkPodsRunNothing) {
  startController();
  const TestPod bad = runPod("default", "bad");
  annotate(bad, "many");
  ASSERT_TRUE(waitForEvent(bad, "InvalidCaptureAnnotation"));
  const nlohmann::json invalid = api_->events(bad.uid, "InvalidCaptureAnnotation").at(0);
  EXPECT_EQ(invalid.value("type", ""), "Warning");
  EXPECT_THAT(invalid.value("message", ""), HasSubstr("many"));

  const TestPod host = runPod("default", "host", /*host_network=*/true);
  annotate(host, "2");
  ASSERT_TRUE(waitForEvent(host, "CaptureFailed"));
  EXPECT_THAT(api_->messages(host.uid, "CaptureFailed").at(0), HasSubstr("hostNetwork"));

  // A running capture whose annotation turns invalid stops.
  const TestPod good = runPod("default", "good");
  const pid_t pid = startCapture(good, 2);
  ASSERT_FALSE(HasFailure());
  annotate(good, "0");
  EXPECT_TRUE(waitUntilGone(pid));
  ASSERT_TRUE(waitForEvent(good, "InvalidCaptureAnnotation"));
  ASSERT_TRUE(waitForEvent(good, "CaptureStopped"));
  EXPECT_TRUE(waitUntil([&] { return filesIn(capture_dir_).empty(); }, kDeadline))
      << "left: " << ::testing::PrintToString(filesIn(capture_dir_));

  EXPECT_THAT(tcpdumpsWritingTo(capture_dir_), IsEmpty());
  EXPECT_FALSE(captureOf(bad).has_value());
  EXPECT_FALSE(captureOf(host).has_value());
  EXPECT_THAT(api_->events(bad.uid, "CaptureStarted"), IsEmpty());
  EXPECT_THAT(api_->events(host.uid, "CaptureStarted"), IsEmpty());
}

TEST_F(ControllerE2E, SameNameInTwoNamespacesMakesTwoCapturesWithTheirOwnFiles) {
  startController();
  const TestPod alpha = runPod("alpha", "web");
  const TestPod beta = runPod("beta", "web");
  const pid_t alpha_pid = startCapture(alpha, 2);
  const pid_t beta_pid = startCapture(beta, 2);  // the second web of the node
  ASSERT_FALSE(HasFailure());
  EXPECT_NE(alpha_pid, beta_pid);
  EXPECT_EQ(captureField(alpha, "filePath"), file("capture-web.pcap"));
  EXPECT_EQ(captureField(beta, "filePath"), file("capture-beta_web.pcap"));

  api().deletePod(beta.namespace_, beta.name);
  EXPECT_TRUE(waitUntilGone(beta_pid));
  EXPECT_TRUE(waitUntil([&] { return filesStartingWith("capture-beta_web").empty(); }, kDeadline));
  EXPECT_THAT(filesStartingWith("capture-web.pcap"), Contains("capture-web.pcap0"));
  EXPECT_TRUE(processLives(alpha_pid));
}

TEST_F(ControllerE2E, WithoutContainerdItStaysUpUnreadyAndReportsCaptureFailed) {
  startController(controllerArgs({{"--cri-endpoint", "unix://" + dir_ + "/no-containerd.sock"}}),
                  /*ready=*/false);
  TestPod lonely{"default", "lonely",
                 api().createPod("default", "lonely", kNode, {{kAnnotation, "2"}})};

  ASSERT_TRUE(waitForEvent(lonely, "CaptureFailed"));
  const nlohmann::json failed = api_->events(lonely.uid, "CaptureFailed").at(0);
  EXPECT_EQ(failed.value("type", ""), "Warning");
  EXPECT_THAT(failed.value("message", ""), HasSubstr("no-containerd.sock"));

  auto health = httpGet(port_, "/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  auto ready = httpGet(port_, "/readyz");
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body,
              AllOf(HasSubstr("[+]pod-informer ok"), HasSubstr("[-]container-runtime failed"),
                    HasSubstr("[+]capture-worker ok")));
  auto metrics = httpGet(port_, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body, AllOf(HasSubstr("capture_controller_runtime_reachable 0\n"),
                                   HasSubstr("capture_controller_captures_active 0\n")));
  EXPECT_TRUE(controller_->running());
  EXPECT_THAT(controller_->log(), HasSubstr("container runtime not reachable"));
  EXPECT_EQ(captureField(lonely, "state"), "Backoff");
}

TEST_F(ControllerE2E, MetricsCapturesAndTheCapturesCommandShowTheRunningCapture) {
  startController();
  const TestPod web = runPod("default", "web");
  const pid_t pid = startCapture(web, 2);
  ASSERT_FALSE(HasFailure());

  auto metrics = httpGet(port_, "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_THAT(metrics->body,
              AllOf(HasSubstr("capture_controller_captures_active 1\n"),
                    HasSubstr("capture_controller_captures_started_total 1\n"),
                    HasSubstr("capture_controller_informer_synced 1\n"),
                    HasSubstr("capture_controller_runtime_reachable 1\n"),
                    HasSubstr("capture_controller_cri_requests_total{method=\"ListPodSandbox\"}")));
  // Its CaptureStarted Event was posted, and counted (the name alone is in the # HELP line).
  EXPECT_TRUE(waitUntil(
      [&] {
        auto now = httpGet(port_, "/metrics");
        return now.ok() && std::regex_search(now->body, std::regex("\ncapture_controller_events_"
                                                                   "posted_total [1-9]"));
      },
      kDeadline))
      << metrics->body;

  const std::optional<nlohmann::json> capture = captureOf(web);
  ASSERT_TRUE(capture);
  EXPECT_EQ(capture->value("podNamespace", ""), "default");
  EXPECT_EQ(capture->value("podName", ""), "web");
  EXPECT_EQ(capture->value("state", ""), "Running");
  EXPECT_EQ(capture->value("sandboxId", ""), web.sandbox.id);
  EXPECT_EQ(capture->value("netnsPath", ""), web.netns);
  EXPECT_EQ(capture->value("pid", 0), pid);
  EXPECT_EQ(capture->value("files", 0), 2);
  ASSERT_FALSE(capture->at("filesOnDisk").empty());
  EXPECT_EQ(capture->at("filesOnDisk")[0].value("path", ""), file("capture-web.pcap0"));
  EXPECT_GT(capture->at("filesOnDisk")[0].value("bytes", 0), 24);

  const std::string address = "--http-address=127.0.0.1:" + std::to_string(port_);
  const lab::CommandResult table = runBinary({"captures", address});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, AllOf(HasSubstr("default/web"), HasSubstr("Running"),
                               HasSubstr(web.sandbox.id.substr(0, 13)), HasSubstr(web.netns),
                               HasSubstr(std::to_string(pid)), HasSubstr("capture-web.pcap0 (")));
  EXPECT_THAT(table.out, Not(HasSubstr(web.sandbox.id.substr(0, 14))));

  const lab::CommandResult json = runBinary({"captures", "--json", address});
  const auto document = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(document.is_discarded()) << json.out;
  EXPECT_EQ(document.at("captures").at(0).value("sandboxId", ""), web.sandbox.id);

  const lab::CommandResult nobody = runBinary({"captures", "--http-address=127.0.0.1:1"});
  EXPECT_EQ(nobody.exit_code, 1);
  EXPECT_THAT(nobody.err, HasSubstr("not answering at 127.0.0.1:1"));
}

// ---- filters and bounds (tcpdump.antrea.io/filter, /duration, /packets) ----

// Sends UDP datagrams to ip:9 from the host until destroyed.
class UdpSender {
 public:
  explicit UdpSender(const std::string& ip) {
    thread_ = std::thread([this, ip] {
      const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(9);
      ::inet_pton(AF_INET, ip.c_str(), &to.sin_addr);
      while (!done_) {
        (void)::sendto(fd, "udp", 3, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // pacing, not a wait
      }
      ::close(fd);
    });
  }
  ~UdpSender() {
    done_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST_F(ControllerE2E, AnIcmpFilterCapturesIcmpAndNoUdp) {
  startController();
  const TestPod web = runPod("default", "web");  // pinged: ICMP
  UdpSender udp(web.sandbox.ip);
  api().setAnnotation("default", "web", "tcpdump.antrea.io/filter", "icmp");
  annotate(web, "1");
  ASSERT_NE(waitForRunningCapture(web), 0);
  ASSERT_TRUE(waitForEvent(web, "CaptureStarted"));
  EXPECT_THAT(api_->events(web.uid, "CaptureStarted")[0].value("message", ""),
              HasSubstr("filter \"icmp\""));
  const std::string pcap = file("capture-web.pcap");
  std::vector<Packet> packets;
  ASSERT_TRUE(waitUntil(
      [&] {
        auto read = readPcap(pcap);
        if (read.ok()) packets = *read;
        return packets.size() >= 10;
      },
      kDeadline))
      << "fewer than 10 packets in " << pcap;
  for (const Packet& packet : packets) {
    EXPECT_EQ(packet.protocol, IPPROTO_ICMP) << packet.source << " -> " << packet.destination;
  }
}

TEST_F(ControllerE2E, AFilterThatDoesNotCompileStartsNothingAndSaysWhy) {
  startController();
  const TestPod web = runPod("default", "web");
  api().setAnnotation("default", "web", "tcpdump.antrea.io/filter", "icmp -w /x");
  annotate(web, "1");
  ASSERT_TRUE(waitForEvent(web, "InvalidCaptureAnnotation"));
  EXPECT_THAT(api_->events(web.uid, "InvalidCaptureAnnotation")[0].value("message", ""),
              AllOf(HasSubstr("tcpdump.antrea.io/filter"), HasSubstr("syntax error")));
  EXPECT_THAT(tcpdumpsWritingTo(capture_dir_), IsEmpty());
  EXPECT_THAT(filesStartingWith("capture-web"), IsEmpty());
}

TEST_F(ControllerE2E, APacketCountEndsWithExactlyThatManyPacketsAndKeepsTheFiles) {
  startController();
  const TestPod web = runPod("default", "web");  // pinged every 50 ms
  api().setAnnotation("default", "web", "tcpdump.antrea.io/packets", "20");
  annotate(web, "2");
  ASSERT_TRUE(waitForEvent(web, "CaptureCompleted"));
  EXPECT_THAT(
      api_->events(web.uid, "CaptureCompleted")[0].value("message", ""),
      AllOf(HasSubstr("the packet count of 20 was reached"), HasSubstr("20 packets captured")));
  size_t records = 0;
  for (const std::string& name : filesStartingWith("capture-web.pcap")) {
    auto counted = countPcapRecords(file(name));
    ASSERT_TRUE(counted.ok()) << counted.status();
    records += *counted;
  }
  EXPECT_EQ(records, 20u);
  EXPECT_EQ(captureField(web, "state"), "Completed");
  EXPECT_EQ(captureField(web, "counts").value("captured", 0), 20);
  EXPECT_THAT(tcpdumpsWritingTo(capture_dir_), IsEmpty());

  // Removed: the kept files go.
  api().removeAnnotation("default", "web", kAnnotation);
  ASSERT_TRUE(waitForEvent(web, "CaptureStopped"));
  EXPECT_THAT(filesStartingWith("capture-web"), IsEmpty());
}

TEST_F(ControllerE2E, CountsGrowWhileTrafficFlowsAndMatchTheFilesAtCompletion) {
  startController();  // --resync-period=1s: tcpdump is asked for its counts every second
  const TestPod web = runPod("default", "web");  // pinged every 50 ms: about 40 packets a second
  api().setAnnotation("default", "web", "tcpdump.antrea.io/packets", "200");
  annotate(web, "2");
  // While it runs: counts from tcpdump's SIGUSR1 reports, growing.
  std::vector<int64_t> seen;
  ASSERT_TRUE(waitUntil(
      [&] {
        const std::optional<nlohmann::json> capture = captureOf(web);
        if (!capture || capture->value("state", "") != "Running") return false;
        const nlohmann::json counts = capture->value("counts", nlohmann::json());
        if (counts.is_null()) return false;
        const int64_t captured = counts.value("captured", int64_t{0});
        if (captured > 0 && (seen.empty() || captured > seen.back())) seen.push_back(captured);
        return seen.size() >= 2;
      },
      kDeadline))
      << "no growing counts while the capture ran; seen: " << seen.size();
  EXPECT_LT(seen.back(), 200);

  // At completion: tcpdump's final report, the files and /metrics agree.
  ASSERT_TRUE(waitForEvent(web, "CaptureCompleted"));
  size_t records = 0;
  uint64_t bytes = 0;
  for (const std::string& name : filesStartingWith("capture-web.pcap")) {
    auto counted = countPcapRecords(file(name));
    ASSERT_TRUE(counted.ok()) << counted.status();
    records += *counted;
    bytes += std::filesystem::file_size(file(name));
  }
  EXPECT_EQ(records, 200u);
  const std::optional<nlohmann::json> capture = captureOf(web);
  ASSERT_TRUE(capture.has_value());
  EXPECT_EQ(capture->value("state", ""), "Completed");
  EXPECT_EQ(capture->at("counts").value("captured", 0), 200);
  EXPECT_GE(capture->at("counts").value("receivedByFilter", 0), 200);
  EXPECT_EQ(capture->value("bytesOnDisk", uint64_t{0}), bytes);
  EXPECT_THAT(api_->events(web.uid, "CaptureCompleted")[0].value("message", ""),
              AllOf(HasSubstr("200 packets captured"),
                    HasSubstr(std::to_string(bytes) + " bytes on disk")));
  auto metrics = httpGet(port_, "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(metrics->body,
              AllOf(HasSubstr("capture_controller_capture_packets_captured_total{namespace="
                              "\"default\",pod=\"web\"} 200\n"),
                    HasSubstr("capture_controller_packets_captured_total 200\n")));
}

TEST_F(ControllerE2E, ADurationEndsTheCaptureOnTimeAndKeepsTheFiles) {
  startController();
  const TestPod web = runPod("default", "web");
  api().setAnnotation("default", "web", "tcpdump.antrea.io/duration", "3s");
  annotate(web, "1");
  ASSERT_NE(waitForRunningCapture(web), 0);
  const auto running = std::chrono::steady_clock::now();
  ASSERT_TRUE(waitForEvent(web, "CaptureCompleted"));
  const auto took = std::chrono::steady_clock::now() - running;
  EXPECT_GE(took, std::chrono::milliseconds(2500));
  EXPECT_LE(took, std::chrono::seconds(5));
  EXPECT_THAT(api_->events(web.uid, "CaptureCompleted")[0].value("message", ""),
              HasSubstr("the duration of 3s was reached"));
  EXPECT_THAT(filesStartingWith("capture-web.pcap"), ElementsAre("capture-web.pcap"));
  EXPECT_GT(readPcap(file("capture-web.pcap")).value_or(std::vector<Packet>{}).size(), 10u);
}

// ---- follow: the live stream of a capture's rotating files ----

// Sends UDP datagrams of kPayloadBytes from the host to ip:kPort until destroyed, numbered 0, 1,
// 2, ... in their first bytes (kMagic, then the number, little-endian), in bursts of kBurst every
// few milliseconds: about 3,000 a second, 3.7 MB, which the veth's backlog and tcpdump keep up
// with on a busy 2-core machine. A number goes out once: a failed sendto() is tried again.
class SequencedUdpSender {
 public:
  static constexpr uint16_t kPort = 9000;
  static constexpr size_t kPayloadBytes = 1200;
  static constexpr char kMagic[8] = {'f', 'o', 'l', 'l', 'o', 'w', '#', '#'};

  explicit SequencedUdpSender(const std::string& ip) {
    thread_ = std::thread([this, ip] {
      constexpr int kBurst = 16;
      const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(kPort);
      ::inet_pton(AF_INET, ip.c_str(), &to.sin_addr);
      std::string payload(kPayloadBytes, 'x');
      std::memcpy(payload.data(), kMagic, sizeof kMagic);
      while (!done_) {
        for (int i = 0; i < kBurst && !done_; ++i) {
          const uint64_t number = sent_.load();
          for (size_t byte = 0; byte < 8; ++byte) {
            payload[sizeof kMagic + byte] = static_cast<char>(number >> (8 * byte));
          }
          if (::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                       sizeof to) == static_cast<ssize_t>(payload.size())) {
            ++sent_;
          }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // pacing, not a wait
      }
      ::close(fd);
    });
  }
  ~SequencedUdpSender() {
    done_ = true;
    thread_.join();
  }
  uint64_t sent() const { return sent_.load(); }

  // The number a captured frame (Ethernet, IPv4, UDP to kPort) carries; nullopt for any other.
  static std::optional<uint64_t> numberOf(const std::string& frame) {
    if (frame.size() < sizeof(ether_header) + sizeof(iphdr)) return std::nullopt;
    const auto* ethernet = reinterpret_cast<const ether_header*>(frame.data());
    if (ntohs(ethernet->ether_type) != ETHERTYPE_IP) return std::nullopt;
    const auto* ip = reinterpret_cast<const iphdr*>(frame.data() + sizeof(ether_header));
    const size_t udp_at = sizeof(ether_header) + ip->ihl * 4u;
    if (ip->protocol != IPPROTO_UDP || frame.size() < udp_at + sizeof(udphdr)) return std::nullopt;
    const auto* udp = reinterpret_cast<const udphdr*>(frame.data() + udp_at);
    const size_t payload_at = udp_at + sizeof(udphdr);
    if (ntohs(udp->dest) != kPort || frame.size() != payload_at + kPayloadBytes ||
        std::memcmp(frame.data() + payload_at, kMagic, sizeof kMagic) != 0) {
      return std::nullopt;
    }
    uint64_t number = 0;
    for (size_t byte = 0; byte < 8; ++byte) {
      number |= uint64_t{static_cast<unsigned char>(frame[payload_at + sizeof kMagic + byte])}
                << (8 * byte);
    }
    return number;
  }

 private:
  std::atomic<bool> done_{false};
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

// follow/README.md: one global header, then every record of the file tcpdump writes when follow
// starts, from its beginning, then each next file's, across rotations and wrap-arounds. Started
// before the first packet, the stream must hold every packet tcpdump wrote, in order, and end
// with the files as tcpdump left them.
TEST_F(ControllerE2E, FollowStreamsTheCaptureAcrossRotations) {
  // 3,000 frames of 1,242 bytes (1,258 with their record headers): 795 to a file of -C 1M, so
  // tcpdump writes files 0, 1, 0 again (the wrap-around) and 1 again, 3.8 MB in all, then exits
  // (-c 3000); the capture is Completed, its files kept, and follow ends.
  constexpr size_t kPackets = 3000;
  constexpr int kFiles = 2;
  constexpr size_t kFileBytes = 1'000'000;  // -C 1M
  startController();
  const TestPod web = runPod("default", "web", false, /*ping=*/false);
  ASSERT_FALSE(HasFailure());
  api().setAnnotation("default", "web", "tcpdump.antrea.io/filter",
                      "udp dst port " + std::to_string(SequencedUdpSender::kPort));
  api().setAnnotation("default", "web", "tcpdump.antrea.io/packets", std::to_string(kPackets));
  annotate(web, std::to_string(kFiles));
  ASSERT_NE(waitForRunningCapture(web), 0);
  const std::string base = captureOf(web).value_or(nlohmann::json{}).value("filePath", "");
  ASSERT_EQ(base, file("capture-web.pcap"));

  // --v=1: it logs each file it begins.
  const std::string stream = dir_ + "/follow.pcap";
  auto follow = ControllerProcess::start(
      {"follow", "default/web", "--http-address=127.0.0.1:" + std::to_string(port_), "--v=1"},
      dir_ + "/follow.log", stream);
  ASSERT_TRUE(follow.ok()) << follow.status();
  ControllerProcess& follower = **follow;
  ASSERT_TRUE(waitUntil(
      [&] {
        return follower.log().find("following " + base + "0 (") != std::string::npos ||
               !follower.running();
      },
      kDeadline));
  ASSERT_TRUE(follower.running()) << "follow exited early:\n" << follower.log();
  ASSERT_THAT(follower.log(), HasSubstr("following " + base + "0 ("))
      << "follow did not begin the first file";

  // The stream's size before the controller reported the capture Completed: what follow wrote
  // while it could not know that tcpdump was done, live.
  uintmax_t streamed_live = 0;
  const auto sending = Clock::now();
  {
    ASSERT_TRUE(lab::pingOnce(web.sandbox.ip).ok());  // its neighbour entry, before the burst
    SequencedUdpSender sender(web.sandbox.ip);
    ASSERT_TRUE(waitUntil(
        [&] {
          std::error_code error;
          const uintmax_t size = std::filesystem::file_size(stream, error);
          if (captureField(web, "state") == "Completed") return true;
          if (!error) streamed_live = std::max(streamed_live, size);
          return false;
        },
        kDeadline))
        << sender.sent()
        << " datagrams sent; capture: " << captureOf(web).value_or(nlohmann::json()).dump();
    std::cerr << "[ info ] " << sender.sent() << " datagrams sent in "
              << std::chrono::duration_cast<milliseconds>(Clock::now() - sending).count()
              << " ms until tcpdump had " << kPackets << "\n";
  }
  EXPECT_GT(streamed_live, kFileBytes) << "follow did not stream across a rotation live";
  // The capture is Completed: follow writes out what is on disk and exits 0 once it sees that
  // in /captures (every 2 s).
  const std::optional<int> code = follower.waitForExit(kDeadline);
  const std::string follow_log = follower.log();
  ASSERT_EQ(code, 0) << follow_log;
  EXPECT_THAT(follow_log, HasSubstr("follow: the capture of default/web has completed; " +
                                    std::to_string(kPackets) + " packets written"));
  EXPECT_THAT(follow_log, Not(HasSubstr("packets were lost")));
  EXPECT_THAT(follow_log, HasSubstr("following " + base + "1 ("));
  EXPECT_EQ(captureField(web, "counts").value("captured", size_t{0}), kPackets)
      << "tcpdump's own count of the packets it wrote";

  // libpcap reads the stream to a clean end: one global header (the files'), whole records.
  const std::string bytes = testsupport::readFile(stream);
  auto streamed = readPcapRecords(stream);
  ASSERT_TRUE(streamed.ok()) << streamed.status() << " (" << bytes.size() << " bytes)";
  auto first_file = readPcapRecords(base + "0");
  ASSERT_TRUE(first_file.ok()) << first_file.status();
  EXPECT_EQ(streamed->link_type, first_file->link_type);
  EXPECT_EQ(streamed->snaplen, first_file->snaplen);
  EXPECT_EQ(bytes.substr(0, 24), testsupport::readFile(base + "0").substr(0, 24));
  EXPECT_GT(bytes.size(), kFiles * kFileBytes) << "more than the whole ring: a wrap-around";

  // Every packet tcpdump wrote, each once, in the order sent.
  ASSERT_EQ(streamed->records.size(), kPackets);
  std::vector<uint64_t> numbers;
  for (size_t i = 0; i < streamed->records.size(); ++i) {
    const PcapRecord& record = streamed->records[i];
    const std::optional<uint64_t> number = SequencedUdpSender::numberOf(record.data);
    ASSERT_TRUE(number) << "record " << i << " (" << record.data.size()
                        << " bytes) is not one of the sender's datagrams";
    ASSERT_EQ(record.data.size(), record.length) << "record " << i << " is cut";
    if (!numbers.empty()) {
      ASSERT_GT(*number, numbers.back()) << "record " << i << " is out of order";
    }
    numbers.push_back(*number);
  }
  // Numbers tcpdump never saw (lost before the capture: on the wire, not in the stream).
  const uint64_t unseen = numbers.back() + 1 - numbers.size();
  std::cerr << "[ info ] stream: " << bytes.size() << " bytes, datagrams " << numbers.front()
            << " to " << numbers.back() << ", " << unseen << " never captured\n";

  // It ends with the ring as tcpdump left it, byte for byte: the older file, then the newer,
  // each after its header. Together they hold fewer packets than the stream, whose first ones
  // tcpdump has since overwritten.
  EXPECT_THAT(filesStartingWith("capture-web.pcap"),
              ElementsAre("capture-web.pcap0", "capture-web.pcap1"));
  std::vector<std::string> ring;
  std::vector<uint64_t> first_numbers;
  size_t ring_records = 0;
  for (int i = 0; i < kFiles; ++i) {
    const std::string path = base + std::to_string(i);
    auto records = readPcapRecords(path);
    ASSERT_TRUE(records.ok()) << records.status();
    ASSERT_FALSE(records->records.empty()) << path;
    ring_records += records->records.size();
    first_numbers.push_back(
        SequencedUdpSender::numberOf(records->records.front().data).value_or(0));
    ring.push_back(testsupport::readFile(path).substr(24));
  }
  EXPECT_LT(ring_records, kPackets);
  const std::string tail =
      first_numbers[0] < first_numbers[1] ? ring[0] + ring[1] : ring[1] + ring[0];
  ASSERT_GE(bytes.size(), tail.size());
  EXPECT_TRUE(bytes.compare(bytes.size() - tail.size(), tail.size(), tail) == 0)
      << "the stream's last " << tail.size() << " bytes are not the files' records";
}

TEST_F(ControllerE2E, StartUpFailuresNameWhatIsMissing) {
  const std::string no_tcpdump = dir_ + "/no-tcpdump";
  const lab::CommandResult without_tcpdump = runBinary(controllerArgs({{"--tcpdump", no_tcpdump}}));
  EXPECT_EQ(without_tcpdump.exit_code, 1);
  EXPECT_THAT(without_tcpdump.err, HasSubstr("cannot run tcpdump at " + no_tcpdump));

  const std::string no_config = dir_ + "/no-kubeconfig";
  const lab::CommandResult without_config =
      runBinary(controllerArgs({{"--kubeconfig", no_config}}));
  EXPECT_EQ(without_config.exit_code, 1);
  EXPECT_THAT(without_config.err, HasSubstr(no_config));

  const lab::CommandResult without_node = runBinary({"run", "--node-name="});
  EXPECT_EQ(without_node.exit_code, 2);
  EXPECT_THAT(without_node.err, HasSubstr("--node-name"));

  // A capture directory others can write: they could plant a link where tcpdump writes.
  const std::string open_dir = dir_ + "/open";
  std::filesystem::create_directory(open_dir);
  std::filesystem::permissions(open_dir, std::filesystem::perms::all);
  const lab::CommandResult open = runBinary(controllerArgs({{"--capture-dir", open_dir}}));
  EXPECT_EQ(open.exit_code, 2);
  EXPECT_THAT(open.err, AllOf(HasSubstr("--capture-dir " + open_dir),
                              HasSubstr("writable by group or others")));
}

}  // namespace
}  // namespace e2e

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new lab::LabEnvironment);
  return RUN_ALL_TESTS();
}

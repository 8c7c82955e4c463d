// plugin/kubectl-capture, run as a subprocess as users run it:
//  - with the real kubectl of Debian trixie (ship.fetch_kubectl unpacks it into debs/; a missing
//    one is a failure, never a skip) against the fake API server over TLS, the test playing the
//    controller: it posts the Events the plugin waits for;
//  - with a stub kubectl, for what the fake API server cannot do (exec into the controller): it
//    records its argv and answers from files the test prepares.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakeapi/fake_api_server.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/ship/repo_files.h"
#include "tests/support/files.h"
#include "tests/support/subprocess.h"
#include "tests/support/wait.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testsupport::ProcessResult;
using testsupport::TempDir;
using Args = std::vector<std::string>;

constexpr char kKey[] = "tcpdump.antrea.io";
constexpr char kFilterKey[] = "tcpdump.antrea.io/filter";
constexpr char kDurationKey[] = "tcpdump.antrea.io/duration";
constexpr char kPacketsKey[] = "tcpdump.antrea.io/packets";
constexpr char kNoController[] =
    "no capture-controller Pod on node node-a (is the DaemonSet deployed? kubectl -n kube-system "
    "get ds capture-controller)";
constexpr char kForbidden[] =
    "forbidden: you need get/patch on pods in default and create on pods/exec in kube-system";

void writeFile(const std::string& path, const std::string& bytes, bool executable = false) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  if (executable) ::chmod(path.c_str(), 0755);
}

std::string describe(const ProcessResult& result) {
  return "exit " + std::to_string(result.exit_code) + (result.timed_out ? " (timed out)" : "") +
         "\n--- stdout:\n" + result.out + "\n--- stderr:\n" + result.err;
}

// A PATH directory holding only bash (what /usr/bin/env needs for the script's shebang).
void linkBashInto(const std::string& dir) {
  fs::create_directories(dir);
  fs::create_symlink("/bin/bash", dir + "/bash");
}

// ---------------------------------------------------------------------------------------------
// The real kubectl against the fake API server.

class PluginWithKubectl : public ::testing::Test {
 protected:
  void SetUp() override {
    kubectl_ = ship::fixtureKubectl();
    ASSERT_FALSE(kubectl_.empty())
        << "no kubectl under " << KUBECTL_DEBS_DIR
        << ": the ship.fetch_kubectl fixture unpacks it (ctest -R 'ship.fetch_kubectl|plugin')";
    fs::create_directories(dir_.file("pki"));
    auto certs = fakeapi::generateTestCertificates(dir_.file("pki"));
    ASSERT_TRUE(certs.ok()) << certs.status();
    fakeapi::FakeApiServerOptions options;
    options.tls = true;
    options.cert_file = certs->server_cert;
    options.key_file = certs->server_key;
    options.token = "plugin-test-token";
    server_ = std::make_unique<fakeapi::FakeApiServer>(options);
    ASSERT_TRUE(server_->start().ok());
    kubeconfig_options_.ca_file = certs->ca_cert;
    ASSERT_TRUE(server_->writeKubeconfig(dir_.file("kubeconfig"), kubeconfig_options_).ok());
    // kubectl first on PATH (this machine may have another one in /usr/bin), and the plugin
    // under its installed name, so that `kubectl capture` finds it.
    fs::create_directories(dir_.file("bin"));
    fs::create_symlink(kubectl_, dir_.file("bin/kubectl"));
    fs::create_symlink(PLUGIN_SCRIPT, dir_.file("bin/kubectl-capture"));
    fs::create_directories(dir_.file("home"));
    uid_ = server_->createPod("default", "web", "node-a");
    ASSERT_FALSE(uid_.empty());
  }

  std::map<std::string, std::string> environment() const {
    return {{"PATH", dir_.file("bin") + ":/usr/bin:/bin"},
            // kubectl caches discovery under $HOME/.kube/cache: one HOME per test.
            {"HOME", dir_.file("home")},
            {"KUBECONFIG", dir_.file("kubeconfig")},
            {"TMPDIR", dir_.path()}};
  }

  ProcessResult run(const std::vector<std::string>& args,
                    std::map<std::string, std::string> extra = {},
                    std::chrono::seconds timeout = std::chrono::seconds(60)) const {
    std::map<std::string, std::string> env = environment();
    for (auto& [name, value] : extra) env[name] = value;
    std::vector<std::string> argv = {PLUGIN_SCRIPT};
    argv.insert(argv.end(), args.begin(), args.end());
    return testsupport::runProcess(argv, testsupport::environmentWith(env), timeout);
  }

  // Runs the plugin on a thread of its own, for a test that plays the controller meanwhile.
  class Background {
   public:
    Background(const PluginWithKubectl& test, std::vector<std::string> args)
        : thread_([this, &test, args] { result_ = test.run(args); }) {}
    ~Background() {
      if (thread_.joinable()) thread_.join();
    }
    const ProcessResult& wait() {
      if (thread_.joinable()) thread_.join();
      return result_;
    }

   private:
    ProcessResult result_;
    std::thread thread_;
  };

  std::map<std::string, std::string> annotations(const std::string& ns = "default",
                                                 const std::string& name = "web") const {
    std::map<std::string, std::string> found;
    const std::optional<json> pod = server_->pod(ns, name);
    if (!pod) return found;
    const json stored = pod->value("/metadata/annotations"_json_pointer, json::object());
    for (const auto& [key, value] : stored.items()) {
      // The recorded Pod that the fake's Pods copy carries kubectl's last-applied-configuration.
      if (key == "kubectl.kubernetes.io/last-applied-configuration") continue;
      if (!value.is_string()) {
        ADD_FAILURE() << "annotation " << key << " is not a string: " << pod->dump();
        continue;
      }
      found[key] = value.get<std::string>();
    }
    return found;
  }

  // Waits until the Pod carries `key` = `value`: the plugin has annotated it.
  bool waitForAnnotation(const std::string& key, const std::string& value,
                         const std::string& ns = "default") const {
    return testsupport::waitUntil(
        [&] {
          const auto now = annotations(ns);
          auto it = now.find(key);
          return it != now.end() && it->second == value;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(20));
  }

  // An Event as the controller's recorder posts it, about the Pod `uid`.
  json event(const std::string& name, const std::string& uid, const std::string& reason,
             const std::string& type, const std::string& message, int count = 1) const {
    return {{"metadata", {{"name", name}, {"namespace", "default"}}},
            {"involvedObject",
             {{"kind", "Pod"},
              {"namespace", "default"},
              {"name", "web"},
              {"uid", uid},
              {"apiVersion", "v1"}}},
            {"reason", reason},
            {"message", message},
            {"source", {{"component", "capture-controller"}, {"host", "node-a"}}},
            {"firstTimestamp", "2026-11-22T17:27:58Z"},
            {"lastTimestamp", "2026-11-22T17:27:58Z"},
            {"count", count},
            {"type", type},
            {"reportingComponent", "capture-controller"},
            {"reportingInstance", "node-a"}};
  }

  int patches() const {
    int count = 0;
    for (const auto& request : server_->requests()) {
      if (request.method == "PATCH") ++count;
    }
    return count;
  }

  TempDir dir_{"plugin-test"};
  std::string kubectl_;
  std::unique_ptr<fakeapi::FakeApiServer> server_;
  fakeapi::FakeApiServer::KubeconfigOptions kubeconfig_options_;
  std::string uid_;
};

TEST_F(PluginWithKubectl, StartAnnotatesWaitsAndPrintsCaptureStarted) {
  // Answers from before the start, and about another Pod, are not the answer.
  ASSERT_FALSE(server_
                   ->createEvent("default", event("web.old", uid_, "CaptureStarted", "Normal",
                                                  "an earlier capture"))
                   .empty());
  const std::string other = server_->createPod("default", "db", "node-a");
  ASSERT_FALSE(server_
                   ->createEvent("default", event("db.started", other, "CaptureStarted", "Normal",
                                                  "another Pod's capture"))
                   .empty());

  Background start(*this, {"start", "web", "--filter", "tcp port 443 and host 10.0.0.7",
                           "--duration=90s", "--timeout", "30s"});
  ASSERT_TRUE(waitForAnnotation(kKey, "5")) << describe(start.wait());
  // The controller's answer, after the annotate; another Event first, which is not an answer.
  server_->createEvent("default", event("web.restarted", uid_, "CaptureRestarted", "Normal", "x"));
  ASSERT_FALSE(
      server_
          ->createEvent("default", event("web.started", uid_, "CaptureStarted", "Normal",
                                         "tcpdump (pid 19262) writes /capture-web.pcap0 ..."))
          .empty());
  const ProcessResult& result = start.wait();
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_EQ(result.out, "CaptureStarted: tcpdump (pid 19262) writes /capture-web.pcap0 ...\n")
      << describe(result);

  const auto now = annotations();
  EXPECT_EQ(now.at(kKey), "5");
  EXPECT_EQ(now.at(kFilterKey), "tcp port 443 and host 10.0.0.7");
  EXPECT_EQ(now.at(kDurationKey), "90s");
  EXPECT_EQ(now.count(kPacketsKey), 0u);
  // One annotate, as a JSON merge patch.
  int merge_patches = 0;
  for (const auto& request : server_->requests()) {
    if (request.method == "PATCH") {
      EXPECT_EQ(request.content_type, "application/merge-patch+json");
      EXPECT_EQ(request.path, "/api/v1/namespaces/default/pods/web");
      ++merge_patches;
    }
  }
  EXPECT_EQ(merge_patches, 1);
}

TEST_F(PluginWithKubectl, StartTakesARepeatedEventByItsCount) {
  // The API server aggregates a repeated Event into `count`: same name, count 2.
  ASSERT_FALSE(server_
                   ->createEvent("default", event("web.started", uid_, "CaptureStarted", "Normal",
                                                  "the first capture"))
                   .empty());
  Background start(*this, {"start", "web", "--files", "3", "--timeout", "30s"});
  ASSERT_TRUE(waitForAnnotation(kKey, "3")) << describe(start.wait());
  ASSERT_TRUE(server_->patchEvent("default", "web.started",
                                  {{"count", 2},
                                   {"message", "the second capture"},
                                   {"lastTimestamp", "2026-11-22T17:30:00Z"}}));
  const ProcessResult& result = start.wait();
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_EQ(result.out, "CaptureStarted: the second capture\n") << describe(result);
}

TEST_F(PluginWithKubectl, HostileValuesReachTheAnnotationsVerbatimAndAWarningFails) {
  const std::string canary = dir_.file("canary");
  const std::string filter = "$(touch " + canary + ") `touch " + canary + "` ; rm -rf / * 'q\" \\";
  const std::string duration = "-w /etc/passwd";
  const std::string packets = "--kubeconfig=/dev/null\nsecond line";
  Background start(*this, {"start", "web", "--files", "11", "--filter", filter, "--duration",
                           duration, "--packets", packets, "--timeout", "30s"});
  ASSERT_TRUE(waitForAnnotation(kKey, "11")) << describe(start.wait());
  ASSERT_FALSE(
      server_
          ->createEvent("default", event("web.invalid", uid_, "InvalidCaptureAnnotation", "Warning",
                                         "tcpdump.antrea.io=\"11\": not an integer from 1 to 10"))
          .empty());
  const ProcessResult& result = start.wait();
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_EQ(result.out,
            "InvalidCaptureAnnotation: tcpdump.antrea.io=\"11\": not an integer from 1 "
            "to 10\n")
      << describe(result);

  const auto now = annotations();
  EXPECT_EQ(now.at(kKey), "11");
  EXPECT_EQ(now.at(kFilterKey), filter);
  EXPECT_EQ(now.at(kDurationKey), duration);
  EXPECT_EQ(now.at(kPacketsKey), packets);
  EXPECT_FALSE(fs::exists(canary)) << "a value was run by a shell";
}

TEST_F(PluginWithKubectl, CaptureFailedIsAFailure) {
  Background start(*this, {"start", "web", "--timeout", "30s"});
  ASSERT_TRUE(waitForAnnotation(kKey, "5")) << describe(start.wait());
  server_->createEvent("default", event("web.failed", uid_, "CaptureFailed", "Warning",
                                        "tcpdump exited 1: bad filter"));
  const ProcessResult& result = start.wait();
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_EQ(result.out, "CaptureFailed: tcpdump exited 1: bad filter\n") << describe(result);
}

TEST_F(PluginWithKubectl, StartRemovesTheAnnotationsNotGiven) {
  server_->setAnnotation("default", "web", kKey, "5");
  server_->setAnnotation("default", "web", kFilterKey, "udp");
  server_->setAnnotation("default", "web", kDurationKey, "5m");
  server_->setAnnotation("default", "web", kPacketsKey, "100");
  server_->setAnnotation("default", "web", "example.com/keep", "me");
  Background start(*this, {"start", "web", "--files", "2", "--packets", "1000"});
  ASSERT_TRUE(waitForAnnotation(kKey, "2")) << describe(start.wait());
  server_->createEvent("default", event("web.restarted", uid_, "CaptureStarted", "Normal", "ok"));
  const ProcessResult& result = start.wait();
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  const std::map<std::string, std::string> expected = {
      {kKey, "2"}, {kPacketsKey, "1000"}, {"example.com/keep", "me"}};
  EXPECT_EQ(annotations(), expected);
  EXPECT_EQ(patches(), 1);
}

TEST_F(PluginWithKubectl, StartWithNothingToChangeSaysSo) {
  server_->setAnnotation("default", "web", kKey, "5");
  const ProcessResult result = run({"start", "web"});
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_NE(result.out.find("already has exactly these capture annotations"), std::string::npos)
      << describe(result);
}

TEST_F(PluginWithKubectl, TimeoutSaysNoControllerRunsOnTheNode) {
  // A controller on another node is not the one.
  server_->createPod("kube-system", "capture-controller-other", "node-b");
  server_->setLabel("kube-system", "capture-controller-other", "app.kubernetes.io/name",
                    "capture-controller");
  const ProcessResult result = run({"start", "web", "--timeout", "2s"});
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_NE(result.err.find("no controller answered within 2s: no capture-controller Pod runs on "
                            "node node-a (is the DaemonSet deployed? kubectl -n kube-system get "
                            "ds capture-controller)"),
            std::string::npos)
      << describe(result);
  EXPECT_EQ(annotations().at(kKey), "5");  // left for the controller, and said so
  EXPECT_NE(result.err.find("kubectl capture stop web -n default"), std::string::npos);
}

TEST_F(PluginWithKubectl, TimeoutNamesTheControllerThatDidNotAnswer) {
  server_->createPod("kube-system", "capture-controller-x1", "node-a");
  server_->setLabel("kube-system", "capture-controller-x1", "app.kubernetes.io/name",
                    "capture-controller");
  server_->createPod("kube-system", "capture-controller-other", "node-b");
  server_->setLabel("kube-system", "capture-controller-other", "app.kubernetes.io/name",
                    "capture-controller");
  server_->createPod("kube-system", "unrelated", "node-a");  // labelled app: web
  const ProcessResult result = run({"start", "web", "--timeout", "1s"});
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_NE(result.err.find("no controller answered within 1s: a capture-controller Pod runs on "
                            "node node-a: capture-controller-x1"),
            std::string::npos)
      << describe(result);
  EXPECT_NE(result.err.find("kubectl -n kube-system logs capture-controller-x1"), std::string::npos)
      << describe(result);
  EXPECT_EQ(result.err.find("capture-controller-other"), std::string::npos) << describe(result);
  EXPECT_EQ(result.err.find("unrelated"), std::string::npos) << describe(result);
}

TEST_F(PluginWithKubectl, StopRemovesEveryCaptureAnnotation) {
  server_->setAnnotation("default", "web", kKey, "5");
  server_->setAnnotation("default", "web", kFilterKey, "tcp");
  server_->setAnnotation("default", "web", kDurationKey, "90s");
  server_->setAnnotation("default", "web", "example.com/keep", "me");
  const ProcessResult result = run({"stop", "web"});
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  const std::map<std::string, std::string> expected = {{"example.com/keep", "me"}};
  EXPECT_EQ(annotations(), expected);
  EXPECT_EQ(patches(), 1);

  const ProcessResult again = run({"stop", "web"});
  EXPECT_EQ(again.exit_code, 0) << describe(again);
  EXPECT_EQ(again.out, "no capture annotation on default/web\n") << describe(again);
  EXPECT_EQ(patches(), 1);
}

TEST_F(PluginWithKubectl, AMissingPodIsNamed) {
  for (const std::string subcommand : {"start", "status", "get", "stop", "follow"}) {
    const ProcessResult result = run({subcommand, "nope"});
    EXPECT_EQ(result.exit_code, 1) << subcommand << ": " << describe(result);
    EXPECT_NE(result.err.find("pod default/nope not found"), std::string::npos)
        << subcommand << ": " << describe(result);
  }
  const ProcessResult in_other = run({"stop", "nope", "-n", "team"});
  EXPECT_EQ(in_other.exit_code, 1) << describe(in_other);
  EXPECT_NE(in_other.err.find("pod team/nope not found"), std::string::npos) << describe(in_other);
  EXPECT_EQ(patches(), 0);
}

TEST_F(PluginWithKubectl, AHostNetworkPodIsRefused) {
  server_->createPod("default", "node-agent", "node-a", {}, /*host_network=*/true);
  const ProcessResult result = run({"start", "node-agent"});
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_NE(result.err.find("pod default/node-agent uses hostNetwork"), std::string::npos)
      << describe(result);
  EXPECT_EQ(patches(), 0);
}

TEST_F(PluginWithKubectl, ForbiddenNamesTheRbacNeeded) {
  server_->forbid("patch", "pods", "jane");
  const ProcessResult result = run({"start", "web"});
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_NE(result.err.find(kForbidden), std::string::npos) << describe(result);
  // kubectl's own message follows.
  EXPECT_NE(result.err.find("User \"jane\" cannot patch resource \"pods\""), std::string::npos)
      << describe(result);
}

TEST_F(PluginWithKubectl, TheContextsNamespaceAndTheGlobalFlagsAreUsed) {
  server_->createPod("team", "api", "node-a", {{kKey, "5"}, {kFilterKey, "tcp"}});
  // The kubeconfig the plugin is given: its context, not the current one, has the fake server
  // and the namespace "team".
  fakeapi::FakeApiServer::KubeconfigOptions options = kubeconfig_options_;
  options.context = "lab";
  options.namespace_ = "team";
  const std::string given = dir_.file("given-kubeconfig");
  ASSERT_TRUE(server_->writeKubeconfig(given, options).ok());
  std::string text = testsupport::readFile(given);
  text.replace(text.find("current-context: lab"), 20, "current-context: gone");
  writeFile(given, text);
  // KUBECONFIG names a server nobody listens on: only the flags reach the fake.
  const std::string broken = dir_.file("broken-kubeconfig");
  writeFile(broken,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster:\n    server: "
            "https://127.0.0.1:1\nusers:\n- name: x\n  user: {}\ncontexts:\n- name: x\n  "
            "context:\n    cluster: x\n    user: x\ncurrent-context: x\n");
  const ProcessResult result =
      run({"stop", "--kubeconfig", given, "api", "--context=lab"}, {{"KUBECONFIG", broken}});
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_TRUE(annotations("team", "api").empty()) << describe(result);

  const ProcessResult missing =
      run({"stop", "nope", "--kubeconfig=" + given, "--context", "lab"}, {{"KUBECONFIG", broken}});
  EXPECT_NE(missing.err.find("pod team/nope not found"), std::string::npos) << describe(missing);
}

TEST_F(PluginWithKubectl, KubectlRunsItAsAPlugin) {
  server_->setAnnotation("default", "web", kKey, "5");
  const std::map<std::string, std::string> env = environment();
  const ProcessResult stop = testsupport::runProcess({"kubectl", "capture", "stop", "web"},
                                                     testsupport::environmentWith(env));
  EXPECT_EQ(stop.exit_code, 0) << describe(stop);
  EXPECT_TRUE(annotations().empty()) << describe(stop);
  const ProcessResult help =
      testsupport::runProcess({"kubectl", "capture", "--help"}, testsupport::environmentWith(env));
  EXPECT_EQ(help.exit_code, 0) << describe(help);
  EXPECT_NE(help.out.find("kubectl capture start  POD"), std::string::npos) << describe(help);
}

// ---------------------------------------------------------------------------------------------
// A stub kubectl: it records each call (its arguments NUL-terminated, a newline after the last)
// and answers with the first rule whose glob matches its arguments joined by spaces.

constexpr char kStub[] = R"STUB(#!/usr/bin/env bash
{ printf '%s\0' "$@"; printf '\n'; } >>"$STUB_DIR/calls"
line="$*"
while IFS=$'\t' read -r pattern answer; do
  # shellcheck disable=SC2053 # a glob
  if [[ $line == $pattern ]]; then
    if [[ -f $STUB_DIR/$answer.out ]]; then cat "$STUB_DIR/$answer.out"; fi
    if [[ -f $STUB_DIR/$answer.err ]]; then cat "$STUB_DIR/$answer.err" >&2; fi
    exit "$(cat "$STUB_DIR/$answer.exit" 2>/dev/null || echo 0)"
  fi
done <"$STUB_DIR/rules"
echo "stub kubectl: no rule for: $line" >&2
exit 99
)STUB";

class PluginWithStubKubectl : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.file("bin"));
    fs::create_directories(dir_.file("stub"));
    writeFile(dir_.file("bin/kubectl"), kStub, /*executable=*/true);
    writeFile(dir_.file("stub/rules"), "");
    // The Pod and its node, and the controller there.
    answer("*get pod web *", "default|0b7c4f0e-uid|node-a||4242");
    answer("*get pods --namespace kube-system *", "capture-controller-x1|Running|\n");
  }

  // The first rule whose glob matches wins: add the specific ones first.
  void answer(const std::string& pattern, const std::string& out, const std::string& err = "",
              int exit_code = 0) {
    const std::string name = "answer" + std::to_string(++answers_);
    writeFile(dir_.file("stub/" + name + ".out"), out);
    writeFile(dir_.file("stub/" + name + ".err"), err);
    writeFile(dir_.file("stub/" + name + ".exit"), std::to_string(exit_code));
    std::ofstream(dir_.file("stub/rules"), std::ios::app) << pattern << "\t" << name << "\n";
  }

  ProcessResult run(const Args& args, const std::string& path_override = "") const {
    Args argv = {PLUGIN_SCRIPT};
    argv.insert(argv.end(), args.begin(), args.end());
    return testsupport::runProcess(
        argv,
        testsupport::environmentWith(
            {{"PATH", path_override.empty() ? dir_.file("bin") + ":/usr/bin:/bin" : path_override},
             {"STUB_DIR", dir_.file("stub")},
             {"TMPDIR", dir_.path()}}));
  }

  // Every call of the stub, its exact argv.
  std::vector<Args> calls() const {
    std::vector<Args> found;
    const std::string log = testsupport::readFile(dir_.file("stub/calls"));
    size_t at = 0;
    while (at < log.size()) {
      Args call;
      while (at < log.size() && log[at] != '\n') {
        const size_t end = log.find('\0', at);
        if (end == std::string::npos) break;
        call.push_back(log.substr(at, end - at));
        at = end + 1;
      }
      ++at;  // the newline
      found.push_back(std::move(call));
    }
    return found;
  }

  std::vector<Args> callsStartingWith(const Args& prefix) const {
    std::vector<Args> found;
    for (const Args& call : calls()) {
      if (call.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), call.begin())) {
        found.push_back(call);
      }
    }
    return found;
  }

  TempDir dir_{"plugin-stub-test"};
  int answers_ = 0;
};

const Args kExec = {"exec",        "--namespace",        "kube-system", "capture-controller-x1",
                    "--container", "capture-controller", "--"};

Args execOf(const Args& command) {
  Args args = kExec;
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

// Capture files with every byte a text path could mangle: NUL, \r\n, 0xff, no final newline.
std::string pcapBytes(int seed) {
  std::string bytes = "\xd4\xc3\xb2\xa1\x02\x00\x04\x00";
  bytes += std::string("\0\r\n\n\r\xff\x80 ", 8);
  for (int i = 0; i < 3000; ++i) bytes += static_cast<char>((i * 31 + seed) & 0xff);
  bytes += std::string(1, '\0');
  return bytes;
}

TEST_F(PluginWithStubKubectl, GetCopiesEveryFileInRotationOrderByteForByte) {
  // Rotation order is not name order: the controller says which is oldest.
  const Args paths = {"/capture-web.pcap3", "/capture-web.pcap4", "/capture-web.pcap0"};
  answer("* -- capture-controller captures --pod default/web --paths",
         "/capture-web.pcap3\n/capture-web.pcap4\n/capture-web.pcap0\n");
  for (size_t i = 0; i < paths.size(); ++i) {
    answer("* -- cat " + paths[i], pcapBytes(static_cast<int>(i)));
  }
  const std::string out_dir = dir_.file("out/new/dir");  // created by the plugin
  const ProcessResult result = run({"get", "web", "-o", out_dir});
  ASSERT_EQ(result.exit_code, 0) << describe(result);

  std::string expected_out;
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string base = fs::path(paths[i]).filename();
    const std::string copied = testsupport::readFile(out_dir + "/" + base);
    EXPECT_EQ(copied, pcapBytes(static_cast<int>(i))) << base << " differs";
    expected_out += out_dir + "/" + base + " (" + std::to_string(copied.size()) + " bytes)\n";
  }
  EXPECT_EQ(result.out.substr(0, expected_out.size()), expected_out) << describe(result);
  EXPECT_NE(result.out.find("in rotation order: oldest first; merge with `mergecap -a`"),
            std::string::npos)
      << describe(result);
  // The copies, in the order given, each one exec of cat.
  const std::vector<Args> cats = callsStartingWith(execOf({"cat"}));
  ASSERT_EQ(cats.size(), paths.size());
  for (size_t i = 0; i < paths.size(); ++i) EXPECT_EQ(cats[i], execOf({"cat", paths[i]}));
  EXPECT_EQ(callsStartingWith(execOf({"capture-controller"})),
            std::vector<Args>{
                execOf({"capture-controller", "captures", "--pod", "default/web", "--paths"})});
}

TEST_F(PluginWithStubKubectl, GetIntoTheCurrentDirectoryByDefault) {
  answer("* -- capture-controller captures --pod default/web --paths", "/capture-web.pcap\n");
  answer("* -- cat /capture-web.pcap", pcapBytes(7));
  const std::string cwd = dir_.file("cwd");
  fs::create_directories(cwd);
  const auto previous = fs::current_path();
  fs::current_path(cwd);
  const ProcessResult result = run({"get", "web"});
  fs::current_path(previous);
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_EQ(testsupport::readFile(cwd + "/capture-web.pcap"), pcapBytes(7));
}

TEST_F(PluginWithStubKubectl, GetFailsOnAnEmptyOrFailedCopy) {
  answer("* -- capture-controller captures --pod default/web --paths",
         "/capture-web.pcap0\n/capture-web.pcap1\n/capture-web.pcap2\n");
  answer("* -- cat /capture-web.pcap0", pcapBytes(0));
  answer("* -- cat /capture-web.pcap1", "");
  answer("* -- cat /capture-web.pcap2", "", "cat: /capture-web.pcap2: No such file or directory\n",
         1);
  const ProcessResult result = run({"get", "web", "-o", dir_.file("out")});
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_EQ(testsupport::readFile(dir_.file("out/capture-web.pcap0")), pcapBytes(0));
  EXPECT_FALSE(fs::exists(dir_.file("out/capture-web.pcap1")));
  EXPECT_FALSE(fs::exists(dir_.file("out/capture-web.pcap2")));
  EXPECT_NE(result.err.find("capture-web.pcap1 is empty"), std::string::npos) << describe(result);
  EXPECT_NE(result.err.find("No such file or directory"), std::string::npos) << describe(result);
}

TEST_F(PluginWithStubKubectl, GetOrStatusWithoutACaptureSaysSo) {
  answer("* -- capture-controller captures --pod default/web*", "",
         "no capture of default/web on this node\ncommand terminated with exit code 1\n", 1);
  for (const std::string subcommand : {"get", "status"}) {
    const ProcessResult result = run({subcommand, "web"});
    EXPECT_EQ(result.exit_code, 1) << subcommand << ": " << describe(result);
    EXPECT_NE(result.err.find("no capture of default/web on this node"), std::string::npos)
        << subcommand << ": " << describe(result);
    EXPECT_EQ(result.err.find("command terminated"), std::string::npos)
        << subcommand << ": " << describe(result);
  }
}

TEST_F(PluginWithStubKubectl, StatusPrintsTheControllersAnswer) {
  const std::string table =
      "POD           STATE     SANDBOX         PID     PACKETS   DROPPED   FILES\n"
      "default/web   Running   4b5c0ffee1234   19262   1042      0         capture-web.pcap0 "
      "(1.0 MB)\n";
  answer("* -- capture-controller captures --pod default/web", table);
  const ProcessResult result = run({"status", "web"});
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_EQ(result.out, table);
  const std::vector<Args> all = calls();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0], (Args{"get", "pod", "web", "--output",
                          "jsonpath={.metadata.namespace}{\"|\"}{.metadata.uid}{\"|\"}"
                          "{.spec.nodeName}{\"|\"}{.spec.hostNetwork}{\"|\"}"
                          "{.metadata.resourceVersion}"}));
  EXPECT_EQ(all[1], (Args{"get", "pods", "--namespace", "kube-system", "--selector",
                          "app.kubernetes.io/name=capture-controller", "--field-selector",
                          "spec.nodeName=node-a", "--output",
                          "jsonpath={range .items[*]}{.metadata.name}{\"|\"}{.status.phase}"
                          "{\"|\"}{.metadata.deletionTimestamp}{\"\\n\"}{end}"}));
  EXPECT_EQ(all[2], execOf({"capture-controller", "captures", "--pod", "default/web"}));
}

TEST_F(PluginWithStubKubectl, GlobalFlagsReachEveryCallAndTheNamespaceOnlyThePodsOwn) {
  // This stub's Pod lives in "team" when asked with -n team.
  writeFile(dir_.file("stub/rules"), "");
  answer("*get pod web --namespace team *", "team|uid|node-a||1");
  answer("*get pods --namespace kube-system *", "capture-controller-x1|Running|\n");
  answer("* -- capture-controller captures --pod team/web", "table\n");
  const ProcessResult result =
      run({"--context", "prod", "status", "web", "-n", "team", "--kubeconfig=/etc/k.conf"});
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  const std::vector<Args> all = calls();
  ASSERT_EQ(all.size(), 3u) << describe(result);
  for (const Args& call : all) {
    ASSERT_GE(call.size(), 3u);
    EXPECT_EQ(call[0], "--context=prod");
    EXPECT_EQ(call[1], "--kubeconfig=/etc/k.conf");
  }
  EXPECT_EQ((Args{all[0].begin() + 2, all[0].begin() + 7}),
            (Args{"get", "pod", "web", "--namespace", "team"}));
  EXPECT_EQ((Args{all[2].begin() + 2, all[2].end()}),
            execOf({"capture-controller", "captures", "--pod", "team/web"}));
}

TEST_F(PluginWithStubKubectl, FollowExecsTheControllerWithStdin) {
  answer("* -- capture-controller follow default/web", pcapBytes(3));
  const ProcessResult result = run({"follow", "web"});
  EXPECT_EQ(result.exit_code, 0) << describe(result);
  EXPECT_EQ(result.out, pcapBytes(3));
  const std::vector<Args> all = calls();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.back(), (Args{"exec", "-i", "--namespace", "kube-system", "capture-controller-x1",
                              "--container", "capture-controller", "--", "capture-controller",
                              "follow", "default/web"}));
}

TEST_F(PluginWithStubKubectl, FollowRefusesATerminal) {
  // script(1) (util-linux) runs it with a pty as stdin, stdout and stderr.
  const std::string command = std::string(PLUGIN_SCRIPT) + " follow web";
  const ProcessResult result = testsupport::runProcess(
      {"script", "--quiet", "--return", "--command", command, "/dev/null"},
      testsupport::environmentWith({{"PATH", dir_.file("bin") + ":/usr/bin:/bin"},
                                    {"STUB_DIR", dir_.file("stub")},
                                    {"TMPDIR", dir_.path()}}));
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_NE(result.out.find("pipe it into wireshark -k -i - or tcpdump -r -"), std::string::npos)
      << describe(result);
  EXPECT_TRUE(callsStartingWith({"exec"}).empty());
}

TEST_F(PluginWithStubKubectl, NoControllerOnTheNodeIsNamed) {
  writeFile(dir_.file("stub/rules"), "");
  answer("*get pod web *", "default|uid|node-a||1");
  answer("*get pods --namespace kube-system *", "");
  for (const std::string subcommand : {"status", "get", "follow"}) {
    const ProcessResult result = run({subcommand, "web"});
    EXPECT_EQ(result.exit_code, 1) << subcommand << ": " << describe(result);
    EXPECT_NE(result.err.find(kNoController), std::string::npos)
        << subcommand << ": " << describe(result);
  }
  EXPECT_TRUE(callsStartingWith({"exec"}).empty());
}

TEST_F(PluginWithStubKubectl, ForbiddenNamesTheRbacNeeded) {
  const std::string denied =
      "Error from server (Forbidden): pods \"capture-controller-x1\" is forbidden: User \"jane\" "
      "cannot create resource \"pods/exec\" in API group \"\" in the namespace \"kube-system\"\n";
  answer("* -- capture-controller captures *", "", denied, 1);
  for (const std::string subcommand : {"status", "get"}) {
    const ProcessResult result = run({subcommand, "web"});
    EXPECT_EQ(result.exit_code, 1) << subcommand << ": " << describe(result);
    EXPECT_NE(result.err.find(kForbidden), std::string::npos)
        << subcommand << ": " << describe(result);
    EXPECT_NE(result.err.find(denied), std::string::npos) << subcommand << ": " << describe(result);
  }
}

TEST_F(PluginWithStubKubectl, KubectlMissingFromPathIsNamed) {
  const std::string only_bash = dir_.file("only-bash");
  linkBashInto(only_bash);
  const ProcessResult result = run({"status", "web"}, only_bash);
  EXPECT_EQ(result.exit_code, 1) << describe(result);
  EXPECT_NE(result.err.find("kubectl is not on PATH"), std::string::npos) << describe(result);
}

TEST_F(PluginWithStubKubectl, BadUsageIsExitTwoAndNamesTheMistake) {
  const std::vector<std::pair<Args, std::string>> cases = {
      {{}, "no subcommand"},
      {{"capture", "web"}, "unknown subcommand: capture"},
      {{"start"}, "start: missing POD"},
      {{"status", "web", "--bogus"}, "unknown flag: --bogus"},
      {{"start", "web", "--files"}, "flag --files needs a value"},
      {{"get", "web", "--filter", "tcp"}, "get: unknown flag --filter (only start takes it)"},
      {{"stop", "web", "-o", "dir"}, "stop: unknown flag -o (only get takes it)"},
      {{"start", "web", "--timeout", "soon"}, "--timeout soon is not a duration"},
      {{"stop", "web", "db"}, "unexpected argument: db"},
      {{"stop", "Web_1"}, "not a Pod name: Web_1"},
  };
  for (const auto& [args, message] : cases) {
    const ProcessResult result = run(args);
    EXPECT_EQ(result.exit_code, 2) << describe(result);
    EXPECT_NE(result.err.find(message), std::string::npos) << describe(result);
  }
  for (const Args& help : {Args{"-h"}, Args{"--help"}, Args{"help"}, Args{"start", "--help"}}) {
    const ProcessResult result = run(help);
    EXPECT_EQ(result.exit_code, 0) << describe(result);
    EXPECT_NE(result.out.find("kubectl capture follow POD"), std::string::npos) << describe(result);
  }
  EXPECT_TRUE(calls().empty());
}

}  // namespace

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <httplib.h>
#include <malloc.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <string_view>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "build_info.h"
#include "capture/annotation.h"
#include "capture/controller.h"
#include "capture/netns_launcher.h"
#include "capture/tcpdump.h"
#include "cri/cri_sandbox_resolver.h"
#include "cri/runtime_client.h"
#include "k8s/event_recorder.h"
#include "k8s/kube_config.h"
#include "k8s/pod_informer.h"
#include "status_server.h"

DECLARE_bool(help);
DECLARE_bool(helpshort);
DECLARE_bool(version);

// Flags of every subcommand live here, so `--help` lists them in one place.
DEFINE_string(node_name, "",
              "run: the node whose Pods this controller captures (their spec.nodeName); "
              "default $NODE_NAME, which the DaemonSet sets from the downward API");
DEFINE_string(cri_endpoint, cri::kDefaultEndpoint,
              "CRI runtime socket: unix:///path or /path (containerd's by default)");
DEFINE_string(cri_timeout, "2s", "deadline of each CRI call, e.g. 500ms, 2s");
DEFINE_string(capture_dir, "/",
              "run: where tcpdump writes capture-<pod>.pcap<index>; at start-up every capture "
              "file in it is deleted and the wanted captures start afresh");
DEFINE_int32(max_files, capture::kDefaultMaxCaptureFiles,
             "run: the largest N accepted in tcpdump.antrea.io=\"N\" (N files of 1 MB per "
             "capture)");
DEFINE_string(kubeconfig, "",
              "run: kubeconfig file of the API server; default: $KUBECONFIG, then the Pod's "
              "service account (in a cluster), then ~/.kube/config");
DEFINE_string(
    http_address, ":8080",
    "run: where to serve /healthz, /readyz, /metrics and /captures (host:port; :port "
    "for every address, IPv6 and IPv4; port 0 for any free port, logged); captures: the controller "
    "to ask (its port, on 127.0.0.1 unless a host is given)");
DEFINE_string(tcpdump, capture::kDefaultTcpdumpPath, "run: the tcpdump binary");
DEFINE_string(resync_period, "10s",
              "run: how often every capture's sandbox is looked up again, so that a sandbox "
              "the kubelet replaced is noticed within this time");
DEFINE_bool(json, false, "captures: print the controller's JSON instead of a table");
DEFINE_string(pod_uid, "", "sandbox: the pod's UID (metadata.uid)");
DEFINE_string(pod, "", "sandbox: the pod as NAMESPACE/NAME (instead of --pod-uid)");

namespace {

constexpr char kUsage[] = R"(packet captures of Pods, on demand, by annotation.

Usage:
  capture-controller [run] [--node-name N] [--cri-endpoint E] [--kubeconfig F] [--capture-dir D] ...
      The node agent (the DaemonSet runs this). For each Pod of this node annotated
      tcpdump.antrea.io="N", runs `tcpdump -C 1M -W N -w <capture-dir>/capture-<pod>.pcap` in
      the Pod's network namespace; removing the annotation or deleting the Pod stops it and
      deletes the files. Outcomes are Events on the Pod. Stops cleanly on SIGTERM or SIGINT.

  capture-controller captures [--json] [--http-address ADDR]
      Asks the running controller (kubectl exec into its Pod) for its active captures: Pod,
      state, sandbox (short ID, as crictl shows it), netns, tcpdump pid, files and sizes.

  capture-controller sandbox (--pod-uid UID | --pod NAMESPACE/NAME) [--cri-endpoint E] [--cri-timeout D]
      Resolves the pod's live sandbox through the CRI runtime (ListPodSandbox by the kubelet's
      labels, then PodSandboxStatus verbose) and prints it as JSON: sandbox id, state, attempt,
      netns path, pause pid, pod IP. Compare with `crictl inspectp <id>`. On failure prints the
      reason to stderr and exits 1.

Flags (--pod-uid and --pod_uid are the same flag):
)";

// glog's flags that --help shows beside ours.
const std::set<std::string> kLoggingFlags = {"v", "vmodule", "minloglevel", "logtostderr"};

// `text` broken into lines of at most `width` characters after `indent`, at spaces.
std::string wrap(const std::string& text, size_t indent, size_t width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

// The flags as Kubernetes components print them: --capture-dir, with dashes, its type and its
// default (gflags would print -capture_dir, which users could not paste into a DaemonSet).
void printHelp() {
  std::cout << gflags::ProgramUsage();
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const gflags::CommandLineFlagInfo& flag : flags) {
    if (!flag.filename.ends_with("main.cc") && !kLoggingFlags.contains(flag.name)) continue;
    std::cout << "  --" << absl::StrReplaceAll(flag.name, {{"_", "-"}});
    if (flag.type != "bool") std::cout << " " << flag.type;
    std::cout << "\n";
    std::string description = flag.description;
    if (flag.type == "string") {
      if (!flag.default_value.empty()) description += " (default \"" + flag.default_value + "\")";
    } else if (flag.default_value != "false") {
      description += " (default " + flag.default_value + ")";
    }
    std::cout << wrap(description, 6, 92);
  }
  std::cout << "  -h, --help\n" << wrap("this help", 6, 92);
  std::cout << "  --version\n" << wrap("the version and the build's git revision", 6, 92);
}

void printVersion() {
  std::cout << "capture-controller " << build_info::kVersion << " (git " << build_info::kGitRevision
            << ")\n";
}

absl::StatusOr<absl::Duration> positiveDuration(const char* flag, const std::string& value) {
  absl::Duration duration;
  if (!absl::ParseDuration(value, &duration) || duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": not a positive duration (e.g. 500ms, 2s): ", value));
  }
  return duration;
}

absl::StatusOr<cri::RuntimeClientOptions> criOptions() {
  auto timeout = positiveDuration("cri-timeout", FLAGS_cri_timeout);
  if (!timeout.ok()) return timeout.status();
  return cri::RuntimeClientOptions{FLAGS_cri_endpoint, absl::ToChronoMilliseconds(*timeout)};
}

// ---- sandbox ----

int sandboxCommand() {
  if (FLAGS_pod_uid.empty() == FLAGS_pod.empty()) {
    std::cerr << "sandbox: give exactly one of --pod-uid or --pod NAMESPACE/NAME\n";
    return 2;
  }
  auto options = criOptions();
  if (!options.ok()) {
    std::cerr << options.status().message() << "\n";
    return 2;
  }
  cri::RuntimeClient client(*options);
  cri::CriSandboxResolver resolver(client);
  absl::StatusOr<cri::SandboxInfo> info;
  if (!FLAGS_pod_uid.empty()) {
    info = resolver.resolve(FLAGS_pod_uid);
  } else {
    const auto slash = FLAGS_pod.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == FLAGS_pod.size()) {
      std::cerr << "sandbox: --pod must be NAMESPACE/NAME, got " << FLAGS_pod << "\n";
      return 2;
    }
    info = resolver.resolveByName(FLAGS_pod.substr(0, slash), FLAGS_pod.substr(slash + 1));
  }
  if (!info.ok()) {
    std::cerr << cri::toString(cri::failureOf(info.status())) << ": " << info.status().message()
              << "\n";
    return 1;
  }
  std::cout << cri::toJson(*info).dump(2) << "\n";
  return 0;
}

// ---- captures ----

int capturesCommand() {
  auto address = status::parseHostPort(FLAGS_http_address);
  if (!address.ok()) {
    std::cerr << "--http-address: " << address.status().message() << "\n";
    return 2;
  }
  const std::string host =
      address->host.empty() || address->host == "0.0.0.0" || address->host == "::" ? "127.0.0.1"
                                                                                   : address->host;
  const std::string where = absl::StrCat(host, ":", address->port);
  httplib::Client client(host, address->port);
  client.set_connection_timeout(2);
  client.set_read_timeout(10);
  const httplib::Result response = client.Get("/captures");
  if (!response) {
    std::cerr << "the controller is not answering at " << where << " ("
              << httplib::to_string(response.error())
              << "): is it running, and is --http-address its address?\n";
    return 1;
  }
  if (response->status != 200) {
    std::cerr << where << "/captures answered HTTP " << response->status << ": " << response->body
              << "\n";
    return 1;
  }
  if (FLAGS_json) {
    std::cout << response->body;
    return 0;
  }
  const auto document = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  auto table = document.is_discarded()
                   ? absl::StatusOr<std::string>(absl::InvalidArgumentError("not JSON"))
                   : status::capturesTable(document);
  if (!table.ok()) {
    std::cerr << where << "/captures: " << table.status().message() << "\n";
    return 1;
  }
  std::cout << *table;
  return 0;
}

// ---- run: the controller ----

// What the flags of `run` say, checked.
struct RunSettings {
  cri::RuntimeClientOptions cri;
  status::HostPort http;
  capture::CaptureOptions capture;
};

absl::StatusOr<RunSettings> runSettings() {
  RunSettings settings;
  std::string& node_name = settings.capture.node_name;
  node_name = FLAGS_node_name;
  if (const char* env = std::getenv("NODE_NAME"); node_name.empty() && env != nullptr) {
    node_name = env;
  }
  if (node_name.empty()) {
    return absl::InvalidArgumentError("no node name: give --node-name or set $NODE_NAME");
  }
  auto cri = criOptions();
  if (!cri.ok()) return cri.status();
  settings.cri = *cri;
  auto http = status::parseHostPort(FLAGS_http_address);
  if (!http.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--http-address: ", http.status().message()));
  }
  settings.http = *http;
  auto resync = positiveDuration("resync-period", FLAGS_resync_period);
  if (!resync.ok()) return resync.status();
  if (FLAGS_max_files < 1) return absl::InvalidArgumentError("--max-files: at least 1");
  std::error_code error;
  if (!std::filesystem::is_directory(FLAGS_capture_dir, error)) {
    return absl::InvalidArgumentError("--capture-dir: not a directory: " + FLAGS_capture_dir);
  }
  settings.capture.capture_dir = FLAGS_capture_dir;
  settings.capture.max_files = FLAGS_max_files;
  settings.capture.resync_period = absl::ToChronoMilliseconds(*resync);
  return settings;
}

absl::StatusOr<std::string> describeRuntime(cri::RuntimeClient& runtime) {
  auto version = runtime.version();
  if (!version.ok()) return version.status();
  return absl::StrCat(version->runtime_name(), " ", version->runtime_version(), " (CRI ",
                      version->runtime_api_version(), ") at ", runtime.endpoint());
}

// The informer needs its handler when it is built and the controller needs the informer's
// cache when it is built: the informer calls the controller through this relay instead.
class PodEventRelay : public k8s::PodEventHandler {
 public:
  k8s::PodEventHandler* target = nullptr;
  void onAdd(const k8s::Pod& pod) override { target->onAdd(pod); }
  void onUpdate(const k8s::Pod& old_pod, const k8s::Pod& new_pod) override {
    target->onUpdate(old_pod, new_pod);
  }
  void onDelete(const k8s::Pod& pod) override { target->onDelete(pod); }
};

sigset_t stopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

// A stop signal taken within `timeout`, or 0.
int takeStopSignal(const sigset_t& signals, std::chrono::milliseconds timeout) {
  const timespec wait{static_cast<time_t>(timeout.count() / 1000),
                      static_cast<long>(timeout.count() % 1000) * 1'000'000};
  const int signal = ::sigtimedwait(&signals, nullptr, &wait);
  return signal > 0 ? signal : 0;
}

// Waits for the informer's first list, saying now and then that it still waits; returns the
// stop signal when one comes first.
int waitForSyncOrStop(const k8s::PodInformer& informer, const sigset_t& signals,
                      const std::string& server) {
  const auto started = std::chrono::steady_clock::now();
  auto next_note = started + std::chrono::seconds(10);
  while (!informer.waitForSync(std::chrono::milliseconds(500))) {
    if (int signal = takeStopSignal(signals, std::chrono::milliseconds(0))) return signal;
    if (std::chrono::steady_clock::now() >= next_note) {
      LOG(WARNING) << "still waiting for the first list of this node's Pods from " << server
                   << " after "
                   << std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::steady_clock::now() - started)
                          .count()
                   << " s (not ready until then; see the errors above)";
      next_note += std::chrono::seconds(10);
    }
  }
  return 0;
}

// The controller. Start-up, in this order: flags, tcpdump, the API server's config, HTTP, the
// container runtime (unreachable is not fatal: not ready, and captures retry), the first list of
// this node's Pods, the captures. Then it waits for SIGTERM or SIGINT and stops: Pod watch,
// every tcpdump (its files stay; the next start deletes them), Events, HTTP.
int runCommand() {
  // Blocked before any thread exists, so that every thread inherits the mask and only this one
  // takes them (sigtimedwait). tcpdump children start with an empty mask (capture/spawn.h).
  const sigset_t stop_signals = stopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto settings = runSettings();
  if (!settings.ok()) {
    LOG(ERROR) << settings.status().message();
    return 2;
  }
  auto tcpdump = capture::probeTcpdump(FLAGS_tcpdump);
  if (!tcpdump.ok()) {
    LOG(ERROR) << "cannot start without a working tcpdump (--tcpdump=" << FLAGS_tcpdump
               << "): " << tcpdump.status().message();
    return 1;
  }
  settings->capture.tcpdump = *tcpdump;
  LOG(INFO) << "tcpdump: " << tcpdump->path << ", -C " << tcpdump->file_size;

  k8s::ConfigSources sources;
  sources.kubeconfig_flag = FLAGS_kubeconfig;
  auto cluster = k8s::loadClusterConfig(sources);
  if (!cluster.ok()) {
    LOG(ERROR) << "cannot start without the Kubernetes API: " << cluster.status().message();
    return 1;
  }
  LOG(INFO) << "Kubernetes API " << cluster->server << " (" << cluster->source << ")";

  auto launcher = capture::NetnsLauncher::create({});
  if (!launcher.ok()) {
    LOG(ERROR) << "cannot start: " << launcher.status();
    return 1;
  }
  cri::RuntimeClient runtime(settings->cri);
  cri::CriSandboxResolver resolver(runtime);
  status::RuntimeCheck runtime_check([&runtime] { return describeRuntime(runtime); },
                                     std::chrono::seconds(5));

  k8s::EventRecorderOptions event_options;
  event_options.host = settings->capture.node_name;
  k8s::EventRecorder events(*cluster, event_options);

  k8s::PodInformerOptions informer_options;
  informer_options.node_name = settings->capture.node_name;
  // Only the annotation the controller reads: a Pod's other annotations are most of its memory.
  informer_options.parse.annotation_keys = {{capture::kCaptureAnnotation}};
  PodEventRelay relay;
  k8s::PodInformer informer(*cluster, informer_options, &relay);
  capture::Controller controller(settings->capture, resolver, informer, events, **launcher);
  relay.target = &controller;
  // Whichever way this returns, the informer stops calling the controller before it goes.
  absl::Cleanup stop_informer = [&informer] { informer.stop(); };

  status::StatusServerOptions http_options;
  // An idle worker passes once per resync period: only silence well beyond it means stuck.
  http_options.max_worker_silence = settings->capture.resync_period + std::chrono::minutes(1);
  status::StatusServer http(
      status::StatusSources{
          .informer_synced = [&informer] { return informer.hasSynced(); },
          .runtime = [&runtime_check] { return runtime_check.current(); },
          .worker_pass = [&controller] { return controller.lastWorkerPass(); },
          .captures = [&controller] { return controller.captures(); },
          .metrics =
              [&] {
                return status::MetricsSnapshot{
                    .captures = controller.stats(),
                    .informer = informer.stats(),
                    .events = events.stats(),
                    .informer_synced = informer.hasSynced(),
                    .runtime_reachable = runtime_check.current().reachable,
                    .cri_text = runtime.stats().prometheusText("capture_controller_cri"),
                };
              },
      },
      http_options);
  auto bound = http.start(settings->http);
  if (!bound.ok()) {
    LOG(ERROR) << "cannot start: --http-address: " << bound.status().message();
    return 1;
  }
  // tests/e2e finds the port of --http-address=127.0.0.1:0 in this line.
  LOG(INFO) << "HTTP endpoint listening on " << *bound << " (/healthz /readyz /metrics /captures)";

  runtime_check.start();  // logs the runtime and its version, or why it does not answer
  informer.start();
  LOG(INFO) << "listing the Pods of node " << settings->capture.node_name;
  int signal = waitForSyncOrStop(informer, stop_signals, cluster->server);
  if (signal == 0) {
    if (absl::Status started = controller.start(); !started.ok()) {
      LOG(ERROR) << "cannot start the captures: " << started;
      return 1;
    }
    // The first list parsed pages of up to 500 Pods (MBs of JSON) that glibc would otherwise
    // keep: hand them back (measured with 5,000 Pods: 41 -> 35 MiB RSS; bench_e2e).
    ::malloc_trim(0);
    LOG(INFO) << "ready: capturing the annotated Pods of node " << settings->capture.node_name;
    while (signal == 0) signal = takeStopSignal(stop_signals, std::chrono::hours(1));
  }

  LOG(INFO) << "received " << ::strsignal(signal) << ": stopping";
  informer.stop();
  controller.stop();  // tcpdump ends cleanly; its files stay until the next start deletes them
  if (!events.flush(std::chrono::seconds(5))) {
    LOG(WARNING) << "some Events were not posted before the deadline";
  }
  runtime_check.stop();
  http.stop();
  LOG(INFO) << "stopped";
  return 0;
}

// Subcommands by name; none at all means `run`.
const std::map<std::string_view, int (*)()> kCommands = {
    {"run", runCommand},
    {"captures", capturesCommand},
    {"sandbox", sandboxCommand},
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(kUsage);
  // A default, not an override: --logtostderr=false still writes glog's files.
  gflags::SetCommandLineOptionWithMode("logtostderr", "true", gflags::SET_FLAGS_DEFAULT);
  // -h, as every command line tool takes it; gflags knows only --help.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "-h") {
      printHelp();
      return 0;
    }
  }
  gflags::ParseCommandLineNonHelpFlags(&argc, &argv, /*remove_flags=*/true);
  if (FLAGS_help || FLAGS_helpshort) {
    printHelp();
    return 0;
  }
  if (FLAGS_version) {
    printVersion();
    return 0;
  }
  gflags::HandleCommandLineHelpFlags();  // --helpxml, ...
  google::InitGoogleLogging(argv[0]);

  const std::string_view name = argc >= 2 ? argv[1] : "run";
  const auto command = kCommands.find(name);
  if (command == kCommands.end() || argc > 2) {
    std::cerr << (command == kCommands.end() ? "unknown command: " : "unexpected argument: ")
              << (command == kCommands.end() ? name : std::string_view(argv[2]))
              << "\nusage: capture-controller [run | captures | sandbox] [flags] (see --help)\n";
    return 2;
  }
  return command->second();
}

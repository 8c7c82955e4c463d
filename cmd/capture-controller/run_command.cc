#include <glog/logging.h>
#include <malloc.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "capture/annotation.h"
#include "capture/capture_files.h"
#include "capture/tcpdump.h"
#include "cmd/capture-controller/commands.h"
#include "cmd/capture-controller/flags.h"
#include "cri/cri_sandbox_resolver.h"
#include "cri/runtime_client.h"
#include "k8s/event_recorder.h"
#include "k8s/kube_config.h"
#include "k8s/pod_informer.h"
#include "proc/kernel_features.h"
#include "proc/netns_launcher.h"
#include "status/status_server.h"
#include "worker/capture_worker.h"

namespace cmd {
namespace {

constexpr std::chrono::seconds kTrimPeriod{30};

uint64_t heapInUse() {
  const struct mallinfo2 heap = ::mallinfo2();
  return heap.uordblks + heap.hblkhd;
}

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
  // A directory only root can write: nobody else can plant a link where tcpdump writes.
  if (absl::Status dir = capture::checkCaptureDir(FLAGS_capture_dir); !dir.ok()) return dir;
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

// The informer needs its handler when it is built and the worker needs the informer's cache
// when it is built: the informer calls the worker through this relay instead.
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

}  // namespace

// The controller. Start-up, in this order: flags, tcpdump, the API server's config, HTTP, the
// container runtime (unreachable is not fatal: not ready, and captures retry), the first list of
// this node's Pods, the captures. Then it waits for SIGTERM or SIGINT and stops: Pod watch,
// every tcpdump (its files stay; the next start deletes them), Events, HTTP.
int runCommand() {
  // Blocked before any thread exists, so that every thread inherits the mask and only this one
  // takes them (sigtimedwait). tcpdump children start with an empty mask (capture/spawn.h).
  const sigset_t stop_signals = stopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Two malloc arenas, not glibc's 8 per core: the controller's threads allocate little, and
  // each arena keeps freed memory of its own.
  ::mallopt(M_ARENA_MAX, 2);

  auto settings = runSettings();
  if (!settings.ok()) {
    LOG(ERROR) << settings.status().message();
    return 2;
  }
  // Before anything is spawned (the tcpdump probe is): what the kernel offers decides how
  // children start, and below the floor nothing could.
  if (absl::Status floor = proc::checkKernelFloor(); !floor.ok()) {
    LOG(ERROR) << "cannot start: " << floor.message();
    return 1;
  }
  LOG(INFO) << proc::kernelFeatures().describe();
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

  auto launcher = proc::NetnsLauncher::create({});
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
  // Only the annotations the controller reads: a Pod's others are most of its memory. A static
  // Pod's sandboxes are found through its mirror's kubernetes.io/config.mirror.
  informer_options.parse.annotation_keys = {
      {capture::kCaptureAnnotation, capture::kFilterAnnotation, capture::kDurationAnnotation,
       capture::kPacketsAnnotation, k8s::kMirrorPodAnnotation}};
  PodEventRelay relay;
  k8s::PodInformer informer(*cluster, informer_options, &relay);
  worker::CaptureWorker worker(settings->capture, resolver, informer, events, **launcher);
  relay.target = &worker;
  // Whichever way this returns, the informer stops calling the worker before it goes.
  absl::Cleanup stop_informer = [&informer] { informer.stop(); };

  status::StatusServerOptions http_options;
  // An idle worker passes once per resync period: only silence well beyond it means stuck.
  http_options.max_worker_silence = settings->capture.resync_period + std::chrono::minutes(1);
  status::StatusServer http(
      status::StatusSources{
          .informer_synced = [&informer] { return informer.hasSynced(); },
          .runtime = [&runtime_check] { return runtime_check.current(); },
          .worker_pass = [&worker] { return worker.lastWorkerPass(); },
          .captures = [&worker] { return worker.captures(); },
          .metrics =
              [&] {
                return status::MetricsSnapshot{
                    .captures = worker.stats(),
                    .capture_list = worker.captures(),
                    .informer = informer.stats(),
                    .events = events.stats(),
                    .informer_synced = informer.hasSynced(),
                    .runtime_reachable = runtime_check.current().reachable,
                    .heap_bytes = heapInUse(),
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
    if (absl::Status started = worker.start(); !started.ok()) {
      LOG(ERROR) << "cannot start the captures: " << started;
      return 1;
    }
    LOG(INFO) << "ready: capturing the annotated Pods of node " << settings->capture.node_name;
    // glibc keeps what a program frees, in every arena, for its next allocations: what a relist
    // parsed (pages of up to 500 Pods, MBs of JSON), what a churn of Pods left between live
    // objects. Hand it back to the system now and every 30 s, so that RSS follows what is in
    // use (measured: a churn of 10,000 Pod operations; docs/performance.md).
    do {
      ::malloc_trim(0);
      signal = takeStopSignal(stop_signals, kTrimPeriod);
    } while (signal == 0);
  }

  LOG(INFO) << "received " << ::strsignal(signal) << ": stopping";
  informer.stop();
  worker.stop();  // tcpdump ends cleanly; its files stay until the next start deletes them
  if (!events.flush(std::chrono::seconds(5))) {
    LOG(WARNING) << "some Events were not posted before the deadline";
  }
  runtime_check.stop();
  http.stop();
  LOG(INFO) << "stopped";
  return 0;
}

// Subcommands by name; none at all means `run`.

}  // namespace cmd

// End-to-end latency and footprint of the real binary, with a real containerd (tests/lab), the
// fake API server over TLS and the real tcpdump. Needs root: `sudo build/tests/e2e/bench_e2e`.
//
//   BM_AnnotateToFirstPacket  annotation set -> the pcap holds a packet record after its 24-byte
//                             header (the Pod is pinged every 50 ms); also when the file appears
//   BM_RemoveToFilesGone      annotation removed -> every file of the capture deleted
//   BM_ManyPodsAtOnce         110 Pods (the kubelet's default maxPods) annotated at once -> every
//                             capture Running, its file's pcap header on disk (median of 5; the
//                             other counters are the rounds' means); the controller's peak RSS
//                             with its tcpdump children, and CPU time, from /proc
//   BM_ControllerMemoryWithPods  the controller's RSS with 0, 110 and 5,000 Pods of its node in
//                             its cache (none captured), once the first list is in
// Medians and p99 are counters; Google Benchmark's own time column is the mean.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "tests/e2e/controller_harness.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace e2e {
namespace {

using namespace std::chrono_literals;

constexpr char kNode[] = "bench-node";
constexpr char kAnnotation[] = "tcpdump.antrea.io";
constexpr int kManyPods = 110;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const size_t index = static_cast<size_t>(p / 100.0 * (samples.size() - 1) + 0.5);
  return samples[std::min(index, samples.size() - 1)];
}

// How long from `start` until `condition` held; nullopt when it did not within `timeout`, which
// the caller turns into SkipWithError: never a sample, never a dirty start of the next round.
// Polls every `interval`: the waits measured here take tens of milliseconds to seconds.
std::optional<Clock::duration> timeUntil(Clock::time_point start,
                                         const std::function<bool()>& condition,
                                         milliseconds interval = 1ms, milliseconds timeout = 60s) {
  if (!testsupport::waitUntil(condition, timeout, interval)) return std::nullopt;
  return Clock::now() - start;
}

// One lab, API server and controller for every benchmark of this process.
struct Bench {
  std::unique_ptr<lab::ContainerdLab> lab;
  std::string dir;
  std::string capture_dir;
  std::unique_ptr<ApiServer> api;
  std::unique_ptr<ControllerProcess> controller;
  int port = 0;
  std::unique_ptr<Pinger> pinger;
  lab::Sandbox web;

  absl::Status start() {
    auto started = lab::ContainerdLab::start();
    if (!started.ok()) return started.status();
    lab = std::move(*started);
    dir = testsupport::makeTempDir("bench-e2e");
    capture_dir = dir + "/captures";
    std::filesystem::create_directories(capture_dir);
    std::filesystem::create_directories(dir + "/api");
    auto server = ApiServer::start(dir + "/api");
    if (!server.ok()) return server.status();
    api = std::move(*server);
    auto process = ControllerProcess::start(
        {"--node-name=" + std::string(kNode), "--cri-endpoint=" + lab->endpoint(),
         "--kubeconfig=" + api->kubeconfigPath(), "--capture-dir=" + capture_dir,
         "--http-address=127.0.0.1:0"},
        dir + "/controller.log");
    if (!process.ok()) return process.status();
    controller = std::move(*process);
    const std::optional<int> http = controller->waitForHttpPort(30s);
    if (!http) return absl::UnavailableError("the controller did not start:\n" + controller->log());
    port = *http;
    auto sandbox = runPod("web");
    if (!sandbox.ok()) return sandbox.status();
    web = *sandbox;
    pinger = std::make_unique<Pinger>();
    pinger->add(web.ip);
    return absl::OkStatus();
  }

  ~Bench() {
    pinger.reset();
    controller.reset();
    lab.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  absl::StatusOr<lab::Sandbox> runPod(const std::string& name) {
    const std::string uid = api->fake().createPod("default", name, kNode);
    return lab->runPodSandbox(lab::PodSpec{name, "default", uid});
  }

  bool noFileStartsWith(const std::string& prefix) { return filesIn(capture_dir, prefix).empty(); }
};

Bench* bench = nullptr;

void BM_AnnotateToFirstPacket(benchmark::State& state) {
  const std::string first = bench->capture_dir + "/capture-web.pcap0";
  std::vector<double> packet, file;
  for (auto _ : state) {
    const auto start = Clock::now();
    bench->api->fake().setAnnotation("default", "web", kAnnotation, "3");
    const auto created = timeUntil(start, [&] { return std::filesystem::exists(first); });
    const auto elapsed = timeUntil(start, [&] { return hasPacketRecord(first); });
    if (!created || !elapsed) {
      state.SkipWithError("no packet on disk within 60 s");
      return;
    }
    file.push_back(seconds(*created));
    state.SetIterationTime(seconds(*elapsed));
    packet.push_back(seconds(*elapsed));

    // Back to no capture; untimed, like everything outside SetIterationTime.
    bench->api->fake().removeAnnotation("default", "web", kAnnotation);
    if (!timeUntil(Clock::now(), [&] { return bench->noFileStartsWith("capture-web.pcap"); })) {
      state.SkipWithError("the capture's files stayed 60 s after the annotation went");
      return;
    }
  }
  state.counters["packet_median_ms"] = percentile(packet, 50) * 1e3;
  state.counters["packet_p99_ms"] = percentile(packet, 99) * 1e3;
  state.counters["file_median_ms"] = percentile(file, 50) * 1e3;
  state.counters["file_p99_ms"] = percentile(file, 99) * 1e3;
}
BENCHMARK(BM_AnnotateToFirstPacket)->UseManualTime()->Iterations(20)->Unit(benchmark::kMillisecond);

void BM_RemoveToFilesGone(benchmark::State& state) {
  const std::string first = bench->capture_dir + "/capture-web.pcap0";
  std::vector<double> gone;
  for (auto _ : state) {
    // A capture with packets on disk; untimed, like everything outside SetIterationTime.
    bench->api->fake().setAnnotation("default", "web", kAnnotation, "3");
    if (!timeUntil(Clock::now(), [&] { return hasPacketRecord(first); })) {
      state.SkipWithError("no packet on disk within 60 s");
      return;
    }

    const auto start = Clock::now();
    bench->api->fake().removeAnnotation("default", "web", kAnnotation);
    const auto elapsed =
        timeUntil(start, [&] { return bench->noFileStartsWith("capture-web.pcap"); });
    if (!elapsed) {
      state.SkipWithError("the capture's files stayed 60 s after the annotation went");
      return;
    }
    state.SetIterationTime(seconds(*elapsed));
    gone.push_back(seconds(*elapsed));
  }
  state.counters["median_ms"] = percentile(gone, 50) * 1e3;
  state.counters["p99_ms"] = percentile(gone, 99) * 1e3;
}
BENCHMARK(BM_RemoveToFilesGone)->UseManualTime()->Iterations(20)->Unit(benchmark::kMillisecond);

// Samples the memory of the controller and of the controller with its tcpdump children every
// 50 ms until stopped, and keeps the peaks: RSS (shared libraries counted in every process) and
// PSS (counted once, which is closer to what the container's memory cgroup is charged).
class FootprintSampler {
 public:
  explicit FootprintSampler(pid_t controller) : controller_(controller) {
    thread_ = std::thread([this] {
      while (!stop_) {
        const std::vector<pid_t> children = tcpdumpChildrenOf(controller_);
        uint64_t rss = residentBytes(controller_), pss = proportionalBytes(controller_);
        peak_own_rss_ = std::max<uint64_t>(peak_own_rss_, rss);
        for (pid_t child : children) {
          rss += residentBytes(child);
          pss += proportionalBytes(child);
        }
        peak_rss_ = std::max<uint64_t>(peak_rss_, rss);
        peak_pss_ = std::max<uint64_t>(peak_pss_, pss);
        std::this_thread::sleep_for(50ms);
      }
    });
  }
  ~FootprintSampler() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  static double mib(uint64_t bytes) { return bytes / 1048576.0; }
  double peakOwnRssMiB() const { return mib(peak_own_rss_); }
  double peakRssMiB() const { return mib(peak_rss_); }
  double peakPssMiB() const { return mib(peak_pss_); }

 private:
  const pid_t controller_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> peak_own_rss_{0}, peak_rss_{0}, peak_pss_{0};
  std::thread thread_;
};

void BM_ManyPodsAtOnce(benchmark::State& state) {
  std::vector<std::string> names;
  for (int i = 0; i < kManyPods; ++i) {
    names.push_back("many-" + std::to_string(i));
    auto sandbox = bench->runPod(names.back());
    if (!sandbox.ok()) {
      state.SkipWithError(std::string(sandbox.status().message()).c_str());
      return;
    }
  }
  const pid_t controller = bench->controller->pid();
  std::vector<double> running_samples;
  for (auto _ : state) {
    FootprintSampler sampler(controller);
    const double cpu_before = cpuSeconds(controller);
    const auto start = Clock::now();
    for (const std::string& name : names) {
      bench->api->fake().setAnnotation("default", name, kAnnotation, "2");
    }
    // Files first: asking /captures costs the controller CPU, so only once they all exist.
    const auto all_running = timeUntil(
        start,
        [&] {
          return std::all_of(names.begin(), names.end(),
                             [&](const std::string& name) {
                               // The pcap file header (24 bytes) on disk.
                               std::error_code error;
                               return std::filesystem::file_size(
                                          bench->capture_dir + "/capture-" + name + ".pcap0",
                                          error) >= 24;
                             }) &&
                 runningCaptures(bench->port) == kManyPods;
        },
        10ms);
    if (!all_running) {
      state.SkipWithError("not every capture ran within 60 s");
      return;
    }
    state.SetIterationTime(seconds(*all_running));
    const double controller_cpu = cpuSeconds(controller) - cpu_before;
    double tcpdump_cpu = 0;
    for (pid_t child : tcpdumpChildrenOf(controller)) tcpdump_cpu += cpuSeconds(child);
    sampler.stop();

    const auto removing = Clock::now();
    for (const std::string& name : names) {
      bench->api->fake().removeAnnotation("default", name, kAnnotation);
    }
    const auto all_gone = timeUntil(
        removing, [&] { return bench->noFileStartsWith("capture-many-"); }, 10ms);
    if (!all_gone) {
      state.SkipWithError("the captures' files stayed 60 s after the annotations went");
      return;
    }

    running_samples.push_back(seconds(*all_running));
    state.counters["all_running_median_s"] = percentile(running_samples, 50);
    state.counters["all_files_gone_s"] = seconds(*all_gone);
    state.counters["controller_cpu_s"] = controller_cpu;
    state.counters["tcpdumps_cpu_s"] = tcpdump_cpu;
    state.counters["peak_rss_controller_MiB"] = sampler.peakOwnRssMiB();
    state.counters["peak_rss_with_tcpdumps_MiB"] = sampler.peakRssMiB();
    state.counters["peak_pss_with_tcpdumps_MiB"] = sampler.peakPssMiB();
  }
}
BENCHMARK(BM_ManyPodsAtOnce)->UseManualTime()->Iterations(5)->Unit(benchmark::kMillisecond);

// The whole controller's memory with N Pods of its node in the informer's cache (none of them
// captured): a fresh API server holding N Pods of the recorded shape (about 4 KB of JSON each),
// a fresh controller, its RSS once it is ready. The time is the start-up, from exec to ready.
void BM_ControllerMemoryWithPods(benchmark::State& state) {
  const int pods = static_cast<int>(state.range(0));
  const std::string dir = bench->dir + "/memory-" + std::to_string(pods);
  std::filesystem::create_directories(dir + "/api");
  auto api = ApiServer::start(dir + "/api");
  if (!api.ok()) {
    state.SkipWithError(std::string(api.status().message()).c_str());
    return;
  }
  for (int i = 0; i < pods; ++i) {
    (*api)->fake().createPod("default", "pod-" + std::to_string(i), "memory-node");
  }
  for (auto _ : state) {
    const auto start = Clock::now();
    auto controller = ControllerProcess::start(
        {"--node-name=memory-node", "--cri-endpoint=" + bench->lab->endpoint(),
         "--kubeconfig=" + (*api)->kubeconfigPath(), "--capture-dir=" + dir,
         "--http-address=127.0.0.1:0"},
        dir + "/controller.log");
    if (!controller.ok()) {
      state.SkipWithError(std::string(controller.status().message()).c_str());
      return;
    }
    // The line run_command.cc logs once the list is in and the captures' worker runs.
    const auto synced = timeUntil(
        start, [&] { return (*controller)->log().find("ready: capturing") != std::string::npos; },
        10ms);
    if (!synced) {
      state.SkipWithError("the controller did not list its Pods in time");
      return;
    }
    state.SetIterationTime(seconds(*synced));
    state.counters["pods"] = pods;
    state.counters["rss_MiB"] = FootprintSampler::mib(residentBytes((*controller)->pid()));
  }
}
BENCHMARK(BM_ControllerMemoryWithPods)
    ->Arg(0)
    ->Arg(110)
    ->Arg(5000)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace e2e

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (::geteuid() != 0) {
    std::cerr << "bench_e2e needs root (containerd, network namespaces, tcpdump)\n";
    return 1;
  }
  auto bench = std::make_unique<e2e::Bench>();
  if (absl::Status started = bench->start(); !started.ok()) {
    std::cerr << "bench_e2e: " << started << "\n";
    return 1;
  }
  e2e::bench = bench.get();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

// The capture worker at the scale of a full node, end to end: the real binary (or
// $CAPTURE_CONTROLLER_UNDER_TEST, an earlier build, for before/after figures), a real containerd
// (tests/lab) and the fake API server over TLS. Needs root: `sudo build/tests/e2e/bench_worker`.
//
//   BM_Shutdown            110 captures running, SIGTERM to the controller -> it exited and no
//                          capture process is left; with the real tcpdump, and with a stand-in
//                          that ignores SIGTERM (arg 1)
//   BM_Resync              110 captures running: CRI calls and CRI time per resync
//   BM_CrashLoopEvents     one capture whose tcpdump keeps failing (a stand-in that exits with
//                          an error naming its pid) for 10 minutes: Event writes to the API
//   BM_Churn               40 Pods, 10,000 random operations (annotate, change N, remove, delete
//                          and recreate with a new UID and sandbox): the controller's RSS after
//                          a warm-up of 1,000 operations and at the end
// Every benchmark starts its own controller. Figures are counters.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/e2e/controller_harness.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace e2e {
namespace {

using namespace std::chrono_literals;

constexpr char kNode[] = "bench-node";
constexpr char kAnnotation[] = "tcpdump.antrea.io";

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The counter `name{method="..."}` of a /metrics text, 0 when absent.
double metric(const std::string& text, const std::string& name, const std::string& method) {
  const std::regex line(name + R"(\{method=")" + method + R"("\} ([0-9.e+-]+))");
  std::smatch match;
  return std::regex_search(text, match, line) ? std::stod(match[1]) : 0;
}

struct Fixture {
  std::unique_ptr<lab::ContainerdLab> lab;
  std::string dir;
  std::unique_ptr<ApiServer> api;
  std::vector<std::string> names;  // Pods with a sandbox
  std::map<std::string, lab::Sandbox> sandboxes;
  int runs = 0;  // controllers started

  absl::Status start() {
    auto started = lab::ContainerdLab::start();
    if (!started.ok()) return started.status();
    lab = std::move(*started);
    dir = testsupport::makeTempDir("bench-worker");
    std::filesystem::create_directories(dir + "/api");
    auto server = ApiServer::start(dir + "/api");
    if (!server.ok()) return server.status();
    api = std::move(*server);
    return absl::OkStatus();
  }
  ~Fixture() {
    lab.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  // Pods pod-0 ... pod-<n-1> of the node, each with a READY sandbox.
  absl::Status ensurePods(int n) {
    for (int i = static_cast<int>(names.size()); i < n; ++i) {
      const std::string name = "pod-" + std::to_string(i);
      auto sandbox = runPod(name);
      if (!sandbox.ok()) return sandbox.status();
      names.push_back(name);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<lab::Sandbox> runPod(const std::string& name) {
    const std::string uid = api->fake().createPod("default", name, kNode);
    auto sandbox = lab->runPodSandbox(lab::PodSpec{name, "default", uid});
    if (sandbox.ok()) sandboxes[name] = *sandbox;
    return sandbox;
  }
  // As when a Pod is deleted and its controller creates it again: a new UID, a new sandbox.
  absl::Status recreatePod(const std::string& name) {
    api->fake().deletePod("default", name);
    const lab::Sandbox old = sandboxes[name];
    if (auto s = lab->stopPodSandbox(old.id); !s.ok()) return s;
    if (auto s = lab->removePodSandbox(old.id); !s.ok()) return s;
    return runPod(name).status();
  }

  absl::StatusOr<std::unique_ptr<ControllerProcess>> startController(
      const std::string& name, std::vector<std::string> extra = {}) {
    // Each run its own directory and log: a log left by an earlier run would give its port.
    const std::string run = name + "-" + std::to_string(++runs);
    const std::string capture_dir = dir + "/" + run;
    std::filesystem::create_directories(capture_dir);
    std::vector<std::string> args = {"--node-name=" + std::string(kNode),
                                     "--cri-endpoint=" + lab->endpoint(),
                                     "--kubeconfig=" + api->kubeconfigPath(),
                                     "--capture-dir=" + capture_dir, "--http-address=127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto process = ControllerProcess::start(args, dir + "/" + run + ".log");
    if (!process.ok()) return process.status();
    if (!(*process)->waitForHttpPort(30s)) {
      return absl::UnavailableError("the controller did not start:\n" + (*process)->log());
    }
    return process;
  }

  // A controller with a capture of each of the kManyPods Pods running, and its HTTP port; an
  // error (and the controller's log on stderr) when they do not all run within 120 s.
  struct Capturing {
    std::unique_ptr<ControllerProcess> controller;
    int port = 0;
  };
  absl::StatusOr<Capturing> startCapturingAll(const std::string& name,
                                              std::vector<std::string> extra = {});

  void annotateAll(int n, const std::string& value) {
    for (int i = 0; i < n; ++i) api->fake().setAnnotation("default", names[i], kAnnotation, value);
  }
  void clearAll() {
    for (const std::string& name : names) {
      api->fake().removeAnnotation("default", name, kAnnotation);
    }
  }
};

Fixture* fixture = nullptr;
constexpr int kManyPods = 110;

absl::StatusOr<Fixture::Capturing> Fixture::startCapturingAll(const std::string& name,
                                                              std::vector<std::string> extra) {
  auto controller = startController(name, std::move(extra));
  if (!controller.ok()) return controller.status();
  const int port = *(*controller)->waitForHttpPort(1s);
  annotateAll(kManyPods, "1");
  if (!testsupport::waitUntil([&] { return runningCaptures(port) == kManyPods; }, 120s, 50ms)) {
    std::cerr << (*controller)->log();
    return absl::DeadlineExceededError(
        "not every capture ran within 120 s (the controller's log is above)");
  }
  return Capturing{*std::move(controller), port};
}

// The controller's descendants (its capture processes, whatever their name).
std::vector<pid_t> childrenOf(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::istringstream stat(testsupport::readFile("/proc/" + name + "/stat"));
    std::string pid, comm, state;
    pid_t ppid = 0;
    stat >> pid >> comm >> state >> ppid;
    if (ppid == parent && state != "Z") found.push_back(std::stoi(name));
  }
  return found;
}

void BM_Shutdown(benchmark::State& state) {
  const bool ignores_term = state.range(0) == 1;
  if (auto s = fixture->ensurePods(kManyPods); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  std::vector<std::string> extra;
  if (ignores_term) {
    const std::string stand_in = fixture->dir + "/tcpdump-ignoring-sigterm";
    // SIG_IGN survives exec: sleep ignores SIGTERM too, as a tcpdump stuck in a write might.
    writeTcpdumpStandIn(stand_in, ": > \"${file}0\"\ntrap '' TERM\nexec sleep 100000");
    extra.push_back("--tcpdump=" + stand_in);
  }
  for (auto _ : state) {
    auto running = fixture->startCapturingAll("shutdown", extra);
    if (!running.ok()) {
      state.SkipWithError(std::string(running.status().message()).c_str());
      return;
    }
    auto& [controller, port] = *running;
    const std::vector<pid_t> children = childrenOf(controller->pid());
    const auto start = Clock::now();
    controller->signal(SIGTERM);
    const std::optional<int> code = controller->waitForExit(15min);
    const auto exited = Clock::now() - start;
    if (!code) {
      state.SkipWithError("the controller did not exit within 15 minutes");
      return;
    }
    testsupport::waitUntil(
        [&] {
          return std::none_of(children.begin(), children.end(),
                              [](pid_t pid) { return testsupport::processLives(pid); });
        },
        30s, 10ms);
    const auto all_gone = Clock::now() - start;
    int left = 0;
    for (pid_t child : children) left += testsupport::processLives(child);
    state.SetIterationTime(seconds(exited));
    state.counters["exit_s"] = seconds(exited);
    state.counters["processes_gone_s"] = seconds(all_gone);
    state.counters["exit_code"] = *code;
    state.counters["processes_left"] = left;
    fixture->clearAll();
  }
}
BENCHMARK(BM_Shutdown)
    ->Arg(0)
    ->Arg(1)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

void BM_Resync(benchmark::State& state) {
  if (auto s = fixture->ensurePods(kManyPods); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  constexpr int kResyncs = 5;
  for (auto _ : state) {
    auto running = fixture->startCapturingAll("resync", {"--resync-period=2s"});
    if (!running.ok()) {
      state.SkipWithError(std::string(running.status().message()).c_str());
      return;
    }
    auto& [controller, port] = *running;
    std::this_thread::sleep_for(3s);  // past the starts' own calls
    const auto before = httpGet(port, "/metrics");
    std::this_thread::sleep_for(kResyncs * 2s);
    const auto after = httpGet(port, "/metrics");
    if (!before.ok() || !after.ok()) {
      state.SkipWithError("no /metrics");
      return;
    }
    double calls = 0, cri_seconds = 0;
    for (const char* method : {"ListPodSandbox", "PodSandboxStatus"}) {
      calls += metric(after->body, "capture_controller_cri_requests_total", method) -
               metric(before->body, "capture_controller_cri_requests_total", method);
      cri_seconds +=
          metric(after->body, "capture_controller_cri_request_duration_seconds_sum", method) -
          metric(before->body, "capture_controller_cri_request_duration_seconds_sum", method);
    }
    state.SetIterationTime(cri_seconds / kResyncs);
    state.counters["cri_calls_per_resync"] = calls / kResyncs;
    state.counters["cri_ms_per_resync"] = cri_seconds / kResyncs * 1e3;
    controller->signal(SIGTERM);
    controller->waitForExit(15min);
    fixture->clearAll();
  }
}
BENCHMARK(BM_Resync)->UseManualTime()->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_CrashLoopEvents(benchmark::State& state) {
  if (auto s = fixture->ensurePods(1); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  const std::string stand_in = fixture->dir + "/tcpdump-crashing";
  // Fails after a second, with its pid in the message: every exit reads differently.
  writeTcpdumpStandIn(
      stand_in,
      "sleep 1\necho \"tcpdump: pcap_loop: The interface disappeared (pid $$)\" >&2\n"
      "exit 1");
  const auto minutes = std::chrono::minutes(state.range(0));
  for (auto _ : state) {
    auto controller = fixture->startController("crash-loop", {"--tcpdump=" + stand_in});
    if (!controller.ok()) {
      state.SkipWithError(std::string(controller.status().message()).c_str());
      return;
    }
    const auto writes = [] {
      int posts = 0, patches = 0;
      for (const auto& request : fixture->api->fake().requests()) {
        if (request.path.find("/events") == std::string::npos) continue;
        posts += request.method == "POST";
        patches += request.method == "PATCH";
      }
      return std::pair{posts, patches};
    };
    const auto [posts_before, patches_before] = writes();
    fixture->api->fake().setAnnotation("default", fixture->names[0], kAnnotation, "1");
    std::this_thread::sleep_for(minutes);
    const auto [posts, patches] = writes();
    state.SetIterationTime(std::chrono::duration<double>(minutes).count());
    state.counters["event_posts"] = posts - posts_before;
    state.counters["event_patches"] = patches - patches_before;
    fixture->api->fake().removeAnnotation("default", fixture->names[0], kAnnotation);
    (*controller)->signal(SIGTERM);
    (*controller)->waitForExit(15min);
  }
}
BENCHMARK(BM_CrashLoopEvents)->Arg(10)->UseManualTime()->Iterations(1)->Unit(benchmark::kSecond);

void BM_Churn(benchmark::State& state) {
  constexpr int kPods = 40;
  const int operations = static_cast<int>(state.range(0));
  const int warm_up = operations / 10;
  if (auto s = fixture->ensurePods(kPods); !s.ok()) {
    state.SkipWithError(std::string(s.message()).c_str());
    return;
  }
  for (auto _ : state) {
    auto controller = fixture->startController("churn");
    if (!controller.ok()) {
      state.SkipWithError(std::string(controller.status().message()).c_str());
      return;
    }
    const int port = *(*controller)->waitForHttpPort(1s);
    std::mt19937 random(42);
    std::map<std::string, int> files;  // the annotation's value, 0 when unset
    uint64_t warm_rss = 0, warm_anon = 0;
    double warm_heap = 0;
    // The controller's heap in use, from /metrics; a sample is taken past a trim of the
    // allocator (every 30 s), so that RSS shows what is kept, not what waits to be returned.
    const auto heap = [&] {
      auto answer = httpGet(port, "/metrics");
      std::smatch match;
      static const std::regex line(R"(capture_controller_heap_in_use_bytes ([0-9]+))");
      return answer.ok() && std::regex_search(answer->body, match, line) ? std::stod(match[1])
                                                                         : 0.0;
    };
    int recreated = 0;
    const auto start = Clock::now();
    for (int op = 0; op < operations; ++op) {
      const std::string& name = fixture->names[random() % kPods];
      switch (random() % 4) {
        case 0:  // annotate, or change N
        case 1:
          files[name] = 1 + static_cast<int>(random() % 3);
          fixture->api->fake().setAnnotation("default", name, kAnnotation,
                                             std::to_string(files[name]));
          break;
        case 2:
          files[name] = 0;
          fixture->api->fake().removeAnnotation("default", name, kAnnotation);
          break;
        case 3:
          if (auto s = fixture->recreatePod(name); !s.ok()) {
            state.SkipWithError(std::string(s.message()).c_str());
            return;
          }
          files[name] = 0;
          ++recreated;
          break;
      }
      std::this_thread::sleep_for(5ms);
      if (op + 1 == warm_up) {
        std::this_thread::sleep_for(31s);  // settled, and past a trim
        warm_rss = residentBytes((*controller)->pid());
        warm_anon = anonymousBytes((*controller)->pid());
        warm_heap = heap();
      }
    }
    std::this_thread::sleep_for(31s);  // settled, and past a trim
    const int wanted = static_cast<int>(
        std::count_if(files.begin(), files.end(), [](const auto& f) { return f.second > 0; }));
    testsupport::waitUntil([&] { return runningCaptures(port) == wanted; }, 60s, 100ms);
    const uint64_t end_rss = residentBytes((*controller)->pid());
    const uint64_t end_anon = anonymousBytes((*controller)->pid());
    state.SetIterationTime(seconds(Clock::now() - start));
    state.counters["operations"] = operations;
    state.counters["recreated_pods"] = recreated;
    state.counters["rss_after_warm_up_MiB"] = warm_rss / 1048576.0;
    state.counters["rss_at_end_MiB"] = end_rss / 1048576.0;
    state.counters["growth_KiB"] = (static_cast<double>(end_rss) - warm_rss) / 1024.0;
    state.counters["anon_after_warm_up_MiB"] = warm_anon / 1048576.0;
    state.counters["anon_growth_KiB"] = (static_cast<double>(end_anon) - warm_anon) / 1024.0;
    state.counters["heap_after_warm_up_KiB"] = warm_heap / 1024.0;
    state.counters["heap_growth_KiB"] = (heap() - warm_heap) / 1024.0;
    state.counters["running_at_end"] = runningCaptures(port);
    state.counters["wanted_at_end"] = wanted;
    fixture->clearAll();
    (*controller)->signal(SIGTERM);
    (*controller)->waitForExit(15min);
  }
}
// 2,000 for a quick look; 10,000 for the figures.
BENCHMARK(BM_Churn)->Arg(2000)->Arg(10000)->UseManualTime()->Iterations(1)->Unit(
    benchmark::kSecond);

}  // namespace
}  // namespace e2e

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (::geteuid() != 0) {
    std::cerr << "bench_worker needs root (containerd, network namespaces, tcpdump)\n";
    return 1;
  }
  std::cerr << "bench_worker: measuring " << e2e::binaryUnderTest() << "\n";
  auto fixture = std::make_unique<e2e::Fixture>();
  if (absl::Status started = fixture->start(); !started.ok()) {
    std::cerr << "bench_worker: " << started << "\n";
    return 1;
  }
  e2e::fixture = fixture.get();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

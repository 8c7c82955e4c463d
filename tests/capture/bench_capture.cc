// Speed and memory of the capture engine's hot and costly parts. Run:
// build/tests/capture/bench_capture
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "capture/annotation.h"
#include "capture/capture_files.h"
#include "capture/reconciler.h"
#include "proc/netns_launcher.h"
#include "proc/spawn.h"
#include "tests/capture/fakes.h"
#include "tests/proc/netns_fixture.h"

namespace capture {
namespace {

using namespace std::chrono_literals;
using namespace capture::testing;
using proc::NetnsLauncher;
using proc::runToCompletion;
using proc::SpawnSpec;
using proc::testing::TestNetns;

void BM_ParseCaptureAnnotation(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parseCaptureAnnotation("7", 10));
}
BENCHMARK(BM_ParseCaptureAnnotation);

void BM_IsFileOfCapture(benchmark::State& state) {
  for (auto _ : state) {
    benchmark::DoNotOptimize(isFileOfCapture("capture-web.pcap", "capture-web-1.pcap07"));
  }
}
BENCHMARK(BM_IsFileOfCapture);

// Deleting one capture's files lists the whole directory: a full node (110 Pods x 10 files).
void BM_FilesOfOneCaptureInAFullDirectory(benchmark::State& state) {
  testing::TempDir dir;
  for (int pod = 0; pod < 110; ++pod) {
    for (const std::string& name :
         rotationFileNames(plainFileBase("default", "pod-" + std::to_string(pod), 10), 10)) {
      dir.touch(name);
    }
  }
  CaptureFiles files(dir.path());
  for (auto _ : state) {
    auto names = files.filesOf("capture-pod-42.pcap");
    if (!names.ok() || names->size() != 10) state.SkipWithError("wrong listing");
  }
}
BENCHMARK(BM_FilesOfOneCaptureInAFullDirectory)->Unit(benchmark::kMicrosecond);

// A full node (the kubelet's default maxPods, 110) of annotated Pods with realistic names, and
// seams that keep nothing, so that the heap measured is the reconciler's own.
class FullNode {
 public:
  static constexpr int kPods = 110;

  FullNode() {
    options_.node_name = "node-1";
    options_.capture_dir = dir_.path();
    for (int i = 0; i < kPods; ++i) {
      const std::string uid = "0b8f3c2e-5d4a-4f7e-9c1b-" + std::to_string(100000000000 + i);
      pods_.set(
          testing::makePod(uid, "default", "web-7d9f8b6c5-" + std::to_string(10000 + i), "10"));
      resolver_.set(
          uid, testing::makeSandbox(std::string(64, 'a' + i % 6),
                                    "/var/run/netns/cni-1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8"));
    }
  }
  std::unique_ptr<Reconciler> reconciler() {
    return std::make_unique<Reconciler>(options_, pods_, events_, launcher_, clock_);
  }
  // A reconcile, with the sandbox look-up it asks for answered, as the worker does.
  void start(Reconciler& reconciler, const std::string& uid) {
    reconciler.reconcile(uid);
    for (const SandboxLookup& lookup : reconciler.takeLookups()) {
      reconciler.recordSandbox(lookup.pod_uid, resolver_.resolve(lookup.sandbox_uid));
      reconciler.reconcile(lookup.pod_uid);
    }
  }
  cri::SandboxSnapshot snapshot() { return *resolver_.snapshot(); }
  std::vector<k8s::Pod> pods() const { return pods_.list(); }

 private:
  class NullEvents : public k8s::EventSink {
   public:
    void emit(const k8s::ObjectReference&, k8s::EventType, std::string_view,
              std::string_view) override {}
  };
  class NullLauncher : public ProcessLauncher {
   public:
    void setExitHandler(ExitHandler) override {}
    void setOutputHandler(OutputHandler) override {}
    absl::StatusOr<LaunchedProcess> start(const LaunchSpec& spec) override {
      return LaunchedProcess{++next_id_, 1000, spec.netns_path};
    }
    absl::Status signal(ProcessId, int) override { return absl::OkStatus(); }

   private:
    ProcessId next_id_ = 0;
  };

  testing::TempDir dir_;
  CaptureOptions options_;
  testing::FakePodLister pods_;
  testing::FakeResolver resolver_;
  NullEvents events_;
  NullLauncher launcher_;
  testing::FakeClock clock_;
};

// One resync of a full node whose captures all run, past the runtime's snapshot: every binding
// checked against it, every Pod reconciled (what the worker does every period).
void BM_ResyncOfAFullNode(benchmark::State& state) {
  FullNode node;
  auto reconciler = node.reconciler();
  const std::vector<k8s::Pod> pods = node.pods();
  for (const k8s::Pod& pod : pods) node.start(*reconciler, pod.uid);
  if (reconciler->stats().active != FullNode::kPods) state.SkipWithError("captures not started");
  const cri::SandboxSnapshot snapshot = node.snapshot();
  for (auto _ : state) {
    if (!reconciler->checkBindings(snapshot).empty()) state.SkipWithError("a binding moved");
    for (const k8s::Pod& pod : pods) reconciler->reconcile(pod.uid);
  }
  state.counters["pods"] = FullNode::kPods;
}
BENCHMARK(BM_ResyncOfAFullNode)->Unit(benchmark::kMicrosecond);

// Heap the reconciler holds per running capture (records, names, indexes).
void BM_HeapPerCapture(benchmark::State& state) {
  FullNode node;
  const std::vector<k8s::Pod> pods = node.pods();
  double per_capture = 0;
  for (auto _ : state) {
    const size_t before = mallinfo2().uordblks;
    auto reconciler = node.reconciler();
    for (const k8s::Pod& pod : pods) node.start(*reconciler, pod.uid);
    per_capture = static_cast<double>(mallinfo2().uordblks - before) / FullNode::kPods;
  }
  state.counters["heap_bytes_per_capture"] = per_capture;
}
BENCHMARK(BM_HeapPerCapture)->Iterations(3);

// fork + exec + pidfd reap of /bin/true from this (small) process.
void BM_SpawnAndReap(benchmark::State& state) {
  for (auto _ : state) {
    auto done = runToCompletion(SpawnSpec{{"/bin/true"}, {}}, 10s);
    if (!done.ok() || done->status.exit_code != 0) state.SkipWithError("spawn failed");
  }
}
BENCHMARK(BM_SpawnAndReap)->Unit(benchmark::kMicrosecond);

long rssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// From start() to tcpdump's pcap header on disk, in a real network namespace (root), and what
// one running tcpdump costs in memory.
void BM_TcpdumpStartToFirstFile(benchmark::State& state) {
  if (::geteuid() != 0) {
    state.SkipWithError("needs root (network namespaces)");
    return;
  }
  TestNetns netns;
  auto tcpdump = probeTcpdump(kDefaultTcpdumpPath);
  auto launcher = NetnsLauncher::create({});
  if (!netns.ok() || !tcpdump.ok() || !launcher.ok()) {
    state.SkipWithError("set-up failed");
    return;
  }
  testing::TempDir dir;
  long rss = 0;
  std::atomic<int> exits{0};
  (*launcher)->setExitHandler([&](ProcessExit) { ++exits; });
  for (auto _ : state) {
    auto launched = (*launcher)->start(
        LaunchSpec{"uid", tcpdump->argv(2, dir.file("capture-b.pcap")), netns.path(), 0, ""});
    if (!launched.ok() ||
        !testing::waitUntil([&] { return std::filesystem::exists(dir.file("capture-b.pcap0")); },
                            10s)) {
      state.SkipWithError("tcpdump did not start");
      return;
    }
    state.PauseTiming();
    rss = rssKiB(launched->pid);
    const int before = exits;
    (void)(*launcher)->signal(launched->id, SIGTERM);
    testing::waitUntil([&] { return exits > before; }, 10s);
    std::filesystem::remove(dir.file("capture-b.pcap0"));
    state.ResumeTiming();
  }
  state.counters["tcpdump_rss_KiB"] = static_cast<double>(rss);
}
BENCHMARK(BM_TcpdumpStartToFirstFile)->Unit(benchmark::kMillisecond)->Iterations(20);

}  // namespace
}  // namespace capture

BENCHMARK_MAIN();

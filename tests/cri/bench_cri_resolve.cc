// Latency of resolving a pod UID against a real containerd (its own lab): a first resolve
// (ListPodSandbox by label + PodSandboxStatus verbose), a repeat resolve of the same live
// sandbox (the list only), and each call alone. The node holds kNodePods sandboxes,
// so the label filter has something to filter. Reports the median and p99 of single calls
// (counters p50_us, p99_us) besides Google Benchmark's mean. Needs root.
#include <benchmark/benchmark.h>
#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include "cri/cri_sandbox_resolver.h"
#include "tests/lab/containerd_lab.h"

namespace {

constexpr int kNodePods = 20;

lab::ContainerdLab* g_lab = nullptr;
std::string g_uid;         // the pod being resolved
std::string g_sandbox_id;  // its sandbox

// Times each iteration of `call` and reports percentiles of those single-call latencies.
template <typename Call>
void timeEachCall(benchmark::State& state, Call call) {
  std::vector<double> micros;
  micros.reserve(100000);
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (!call()) {
      state.SkipWithError("CRI call failed");
      return;
    }
    micros.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(micros.begin(), micros.end());
  const auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  state.counters["p50_us"] = at(0.5);
  state.counters["p99_us"] = at(0.99);
}

void BM_ResolveFirst(benchmark::State& state) {
  cri::RuntimeClient client({g_lab->endpoint(), std::chrono::seconds(2)});
  timeEachCall(state, [&] { return cri::CriSandboxResolver(client).resolve(g_uid).ok(); });
}
BENCHMARK(BM_ResolveFirst)->UseRealTime();

void BM_ResolveRepeat(benchmark::State& state) {
  cri::RuntimeClient client({g_lab->endpoint(), std::chrono::seconds(2)});
  cri::CriSandboxResolver resolver(client);
  timeEachCall(state, [&] { return resolver.resolve(g_uid).ok(); });
}
BENCHMARK(BM_ResolveRepeat)->UseRealTime();

void BM_ListPodSandboxByUid(benchmark::State& state) {
  cri::RuntimeClient client({g_lab->endpoint(), std::chrono::seconds(2)});
  runtime::v1::PodSandboxFilter filter;
  (*filter.mutable_label_selector())["io.kubernetes.pod.uid"] = g_uid;
  timeEachCall(state, [&] { return client.listPodSandbox(filter).ok(); });
}
BENCHMARK(BM_ListPodSandboxByUid)->UseRealTime();

void BM_PodSandboxStatusVerbose(benchmark::State& state) {
  cri::RuntimeClient client({g_lab->endpoint(), std::chrono::seconds(2)});
  timeEachCall(state, [&] { return client.podSandboxStatus(g_sandbox_id, true).ok(); });
}
BENCHMARK(BM_PodSandboxStatusVerbose)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  benchmark::Initialize(&argc, argv);
  if (::geteuid() != 0) {
    std::cerr << "bench_cri_resolve: needs root (it starts its own containerd lab)\n";
    return 1;
  }
  auto started = lab::ContainerdLab::start();
  if (!started.ok()) {
    std::cerr << started.status() << "\n";
    return 1;
  }
  g_lab = started->get();
  for (int i = 0; i < kNodePods; ++i) {
    auto sandbox = g_lab->runPodSandbox(lab::podNamed("pod-" + std::to_string(i)));
    if (!sandbox.ok()) {
      std::cerr << sandbox.status() << "\n";
      return 1;
    }
    g_uid = sandbox->pod_uid;
    g_sandbox_id = sandbox->id;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

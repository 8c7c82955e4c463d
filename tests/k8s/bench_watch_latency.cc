// Watch-to-handler latency through the fake API server over loopback: from the moment the
// server records a change (an annotation set) to the handler call it causes, through the chunked
// HTTP stream, the parser, the informer's queue and its dispatcher thread.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <condition_variable>

#include "k8s/pod_informer.h"
#include "tests/fakeapi/fake_api_server.h"

namespace {

using Clock = std::chrono::steady_clock;

class TimingHandler : public k8s::PodEventHandler {
 public:
  void onAdd(const k8s::Pod&) override {}
  void onDelete(const k8s::Pod&) override {}
  void onUpdate(const k8s::Pod&, const k8s::Pod&) override {
    {
      std::lock_guard lock(mutex_);
      ++updates_;
      last_ = Clock::now();
    }
    changed_.notify_all();
  }
  // Waits for update number `n`; returns when it came.
  Clock::time_point waitForUpdate(uint64_t n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return updates_ >= n; });
    return last_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  uint64_t updates_ = 0;
  Clock::time_point last_;
};

void BM_WatchToHandler(benchmark::State& state) {
  fakeapi::FakeApiServer server;
  if (!server.start().ok()) return state.SkipWithError("fake API server did not start");
  for (int i = 0; i < 110; ++i) server.createPod("rec", "pod-" + std::to_string(i), "node");
  TimingHandler handler;
  k8s::ClusterConfig config;
  config.server = server.url();
  k8s::PodInformerOptions options;
  options.node_name = "node";
  k8s::PodInformer informer(config, options, &handler);
  informer.start();
  if (!informer.waitForSync(std::chrono::seconds(10)) ||
      !server.waitForOpenWatches(1, std::chrono::milliseconds(10'000))) {
    return state.SkipWithError("informer did not sync");
  }
  std::vector<double> micros;
  uint64_t n = 0;
  for (auto _ : state) {
    const auto sent = Clock::now();
    server.setAnnotation("rec", "pod-" + std::to_string(n % 110), "tcpdump.antrea.io",
                         std::to_string(n));
    const auto received = handler.waitForUpdate(++n);
    const double elapsed = std::chrono::duration<double>(received - sent).count();
    state.SetIterationTime(elapsed);
    micros.push_back(elapsed * 1e6);
  }
  informer.stop();
  std::sort(micros.begin(), micros.end());
  state.counters["median_us"] = micros[micros.size() / 2];
  state.counters["p99_us"] = micros[micros.size() * 99 / 100];
  state.counters["max_us"] = micros.back();
}
BENCHMARK(BM_WatchToHandler)->UseManualTime()->Iterations(5000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

// What the informer's cache keeps per Pod: the heap bytes still allocated (glibc mallinfo2
// uordblks) after a real list page from the fake API server was parsed into a PodCache and
// the page itself freed. 110 Pods is the kubelet's default maximum per node; 5,000 a stress.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include "k8s/http_client.h"
#include "k8s/pod_cache.h"
#include "k8s/pod_json.h"
#include "tests/fakeapi/fake_api_server.h"

namespace {

std::string listPage(int pods) {
  fakeapi::FakeApiServer server;
  if (!server.start().ok()) return "";
  for (int i = 0; i < pods; ++i) {
    server.createPod("ns-" + std::to_string(i % 20), "pod-" + std::to_string(i), "node",
                     {{"tcpdump.antrea.io", "3"}});
  }
  k8s::ClusterConfig config;
  config.server = server.url();
  auto response =
      k8s::HttpClient(config).request("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dnode");
  return response.ok() ? response->body : "";
}

size_t heapInUse() {
  malloc_trim(0);
  return mallinfo2().uordblks;
}

// range(0): Pods; range(1): 1 to keep only the tcpdump annotation, 0 to keep them all.
void BM_CacheBytes(benchmark::State& state) {
  const int pods = static_cast<int>(state.range(0));
  const std::string page = listPage(pods);
  k8s::PodParseOptions options;
  if (state.range(1) == 1) {
    options.annotation_keys = std::set<std::string, std::less<>>{"tcpdump.antrea.io"};
  }
  size_t retained = 0;
  for (auto _ : state) {
    const size_t before = heapInUse();
    auto cache = std::make_unique<k8s::PodCache>();
    {
      auto document = k8s::parseDocument(page, options);
      std::vector<k8s::Pod> parsed;
      for (auto& object : document->objects) parsed.push_back(std::move(object.pod));
      cache->replace(std::move(parsed));
    }
    retained = heapInUse() - before;
    if (cache->size() != static_cast<size_t>(pods)) state.SkipWithError("not every Pod cached");
    benchmark::DoNotOptimize(cache);
  }
  state.counters["cache_bytes"] = static_cast<double>(retained);
  state.counters["bytes_per_pod"] = static_cast<double>(retained) / pods;
  state.counters["json_bytes_per_pod"] = static_cast<double>(page.size()) / pods;
}
BENCHMARK(BM_CacheBytes)
    ->ArgNames({"pods", "only_tcpdump_annotation"})
    ->Args({110, 0})
    ->Args({110, 1})
    ->Args({5000, 0})
    ->Args({5000, 1})
    ->Iterations(3)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

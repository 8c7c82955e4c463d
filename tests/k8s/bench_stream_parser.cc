// Throughput of the watch stream parser on the recorded stream of a real API server: Pod events
// of 4.3-4.6 KB (managedFields, volumes, conditions) and bookmarks.
#include <benchmark/benchmark.h>

#include "k8s/watch_stream_parser.h"
#include "tests/fakeapi/fake_api_server.h"

namespace {

const std::string& recordedStream() {
  static const std::string stream = fakeapi::readTestdata("watch-http2-bookmarks.ndjson");
  return stream;
}

// The 7 Pod events of the recording, without its 3 bookmarks.
const std::string& podEvents() {
  static const std::string events = [] {
    const std::string& all = recordedStream();
    return all.substr(0, all.find("{\"type\":\"BOOKMARK\""));
  }();
  return events;
}

void parse(benchmark::State& state, const std::string& stream, size_t read_size) {
  k8s::WatchStreamParser parser;
  size_t events = 0;
  const k8s::WatchStreamParser::EventCallback count = [&](absl::StatusOr<k8s::WatchEvent> event) {
    benchmark::DoNotOptimize(event);
    ++events;
    return true;
  };
  for (auto _ : state) {
    for (size_t at = 0; at < stream.size(); at += read_size) {
      parser.feed(std::string_view(stream).substr(at, read_size), count);
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(events));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * stream.size()));
}

// Reads as libcurl hands them over (up to 16 KB), and small reads that split every event.
void BM_PodEvents(benchmark::State& state) {
  parse(state, podEvents(), static_cast<size_t>(state.range(0)));
}
BENCHMARK(BM_PodEvents)->Arg(16384)->Arg(1024);

void BM_RecordedStreamWithBookmarks(benchmark::State& state) {
  parse(state, recordedStream(), 16384);
}
BENCHMARK(BM_RecordedStreamWithBookmarks);

}  // namespace

BENCHMARK_MAIN();

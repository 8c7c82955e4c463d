#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cri {

// Per-RPC call counts, error counts and a latency histogram, kept by RuntimeClient for /metrics.
// Thread-safe; a record() is one short critical section, negligible next to a CRI round trip.
class RpcStats {
 public:
  // Upper bounds of the latency buckets, in seconds; the +Inf bucket is implicit (= calls).
  static constexpr std::array<double, 12> kBucketBoundsSeconds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

  struct Snapshot {
    std::string method;
    uint64_t calls = 0;
    uint64_t errors = 0;
    double latency_sum_seconds = 0;
    // Prometheus-style: cumulative_buckets[i] counts calls with latency <= kBucketBoundsSeconds[i].
    std::array<uint64_t, kBucketBoundsSeconds.size()> cumulative_buckets{};
  };

  void record(std::string_view method, std::chrono::nanoseconds latency, bool ok);
  // One entry per method called so far, sorted by method name.
  std::vector<Snapshot> snapshot() const;
  // The Prometheus text exposition of snapshot(), metric names starting with `prefix`
  // (e.g. "capture_controller_cri"): <prefix>_requests_total, <prefix>_request_errors_total and
  // the histogram <prefix>_request_duration_seconds, each labelled {method="..."}.
  std::string prometheusText(std::string_view prefix) const;

 private:
  struct Counters {
    uint64_t calls = 0;
    uint64_t errors = 0;
    double latency_sum_seconds = 0;
    std::array<uint64_t, kBucketBoundsSeconds.size()> per_bucket{};  // not cumulative
  };
  mutable std::mutex mu_;
  std::map<std::string, Counters, std::less<>> by_method_;
};

}  // namespace cri

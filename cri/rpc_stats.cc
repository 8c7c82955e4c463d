#include "cri/rpc_stats.h"

#include <algorithm>
#include <sstream>

#include "base/prometheus_text.h"

namespace cri {

void RpcStats::record(std::string_view method, std::chrono::nanoseconds latency, bool ok) {
  const double seconds = std::chrono::duration<double>(latency).count();
  const auto bucket =
      std::lower_bound(kBucketBoundsSeconds.begin(), kBucketBoundsSeconds.end(), seconds) -
      kBucketBoundsSeconds.begin();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_method_.find(method);
  if (it == by_method_.end()) it = by_method_.emplace(std::string(method), Counters{}).first;
  Counters& c = it->second;
  ++c.calls;
  if (!ok) ++c.errors;
  c.latency_sum_seconds += seconds;
  if (bucket < static_cast<long>(c.per_bucket.size())) ++c.per_bucket[bucket];
}

std::vector<RpcStats::Snapshot> RpcStats::snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Snapshot> out;
  out.reserve(by_method_.size());
  for (const auto& [method, c] : by_method_) {
    Snapshot s{method, c.calls, c.errors, c.latency_sum_seconds, {}};
    uint64_t running = 0;
    for (size_t i = 0; i < c.per_bucket.size(); ++i) {
      running += c.per_bucket[i];
      s.cumulative_buckets[i] = running;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string RpcStats::prometheusText(std::string_view prefix) const {
  const std::vector<Snapshot> snapshots = snapshot();
  const std::string p(prefix);
  const auto method = [](const Snapshot& s) { return "method=\"" + s.method + "\""; };
  base::PrometheusText text;
  text.family(p + "_requests_total", "counter", "CRI calls, by method.");
  for (const auto& s : snapshots) text.sample(p + "_requests_total", method(s), s.calls);
  text.family(p + "_request_errors_total", "counter", "CRI calls that failed, by method.");
  for (const auto& s : snapshots) text.sample(p + "_request_errors_total", method(s), s.errors);
  const std::string latency = p + "_request_duration_seconds";
  text.family(latency, "histogram", "CRI call latency, by method.");
  for (const auto& s : snapshots) {
    for (size_t i = 0; i < kBucketBoundsSeconds.size(); ++i) {
      std::ostringstream bound;  // 0.0005, 1, 2.5: the stream's shortest form
      bound << kBucketBoundsSeconds[i];
      text.sample(latency + "_bucket", method(s) + ",le=\"" + bound.str() + "\"",
                  s.cumulative_buckets[i]);
    }
    text.sample(latency + "_bucket", method(s) + ",le=\"+Inf\"", s.calls)
        .sample(latency + "_sum", method(s), s.latency_sum_seconds)
        .sample(latency + "_count", method(s), s.calls);
  }
  return text.text();
}

}  // namespace cri

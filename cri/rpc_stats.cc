#include "cri/rpc_stats.h"

#include <algorithm>
#include <charconv>
#include <sstream>

namespace cri {
namespace {

// The shortest text that reads back as the same double. A latency sum grows for as long as the
// controller runs, and rate() over it needs every digit, not the stream's default 6.
std::string roundTrip(double value) {
  char buffer[32];
  return std::string(buffer, std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
}

}  // namespace

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
  std::ostringstream out;
  out << "# HELP " << p << "_requests_total CRI calls, by method.\n"
      << "# TYPE " << p << "_requests_total counter\n";
  for (const auto& s : snapshots) {
    out << p << "_requests_total{method=\"" << s.method << "\"} " << s.calls << "\n";
  }
  out << "# HELP " << p << "_request_errors_total CRI calls that failed, by method.\n"
      << "# TYPE " << p << "_request_errors_total counter\n";
  for (const auto& s : snapshots) {
    out << p << "_request_errors_total{method=\"" << s.method << "\"} " << s.errors << "\n";
  }
  out << "# HELP " << p << "_request_duration_seconds CRI call latency, by method.\n"
      << "# TYPE " << p << "_request_duration_seconds histogram\n";
  for (const auto& s : snapshots) {
    const std::string labels = "{method=\"" + s.method + "\",le=\"";
    for (size_t i = 0; i < kBucketBoundsSeconds.size(); ++i) {
      out << p << "_request_duration_seconds_bucket" << labels << kBucketBoundsSeconds[i] << "\"} "
          << s.cumulative_buckets[i] << "\n";
    }
    out << p << "_request_duration_seconds_bucket" << labels << "+Inf\"} " << s.calls << "\n"
        << p << "_request_duration_seconds_sum{method=\"" << s.method << "\"} "
        << roundTrip(s.latency_sum_seconds) << "\n"
        << p << "_request_duration_seconds_count{method=\"" << s.method << "\"} " << s.calls
        << "\n";
  }
  return out.str();
}

}  // namespace cri

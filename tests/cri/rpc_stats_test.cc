#include "cri/rpc_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace cri {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(RpcStats, CountsCallsErrorsAndCumulativeBuckets) {
  RpcStats stats;
  stats.record("ListPodSandbox", microseconds(300), true);    // <= 0.0005
  stats.record("ListPodSandbox", milliseconds(3), true);      // <= 0.005
  stats.record("ListPodSandbox", milliseconds(3000), false);  // only +Inf
  stats.record("Version", milliseconds(1), true);             // <= 0.001 (bound inclusive)

  const auto snapshot = stats.snapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  const auto& list = snapshot[0];
  EXPECT_EQ(list.method, "ListPodSandbox");
  EXPECT_EQ(list.calls, 3u);
  EXPECT_EQ(list.errors, 1u);
  EXPECT_NEAR(list.latency_sum_seconds, 3.0033, 1e-9);
  EXPECT_EQ(list.cumulative_buckets[0], 1u);   // 0.0005
  EXPECT_EQ(list.cumulative_buckets[2], 1u);   // 0.0025
  EXPECT_EQ(list.cumulative_buckets[3], 2u);   // 0.005
  EXPECT_EQ(list.cumulative_buckets[11], 2u);  // 2.5
  EXPECT_EQ(snapshot[1].method, "Version");
  EXPECT_EQ(snapshot[1].cumulative_buckets[0], 0u);
  EXPECT_EQ(snapshot[1].cumulative_buckets[1], 1u);
}

TEST(RpcStats, PrometheusText) {
  RpcStats stats;
  stats.record("Version", milliseconds(2), true);
  stats.record("Version", milliseconds(2), false);
  const std::string text = stats.prometheusText("cc_cri");
  EXPECT_NE(text.find("# TYPE cc_cri_request_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("cc_cri_requests_total{method=\"Version\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("cc_cri_request_errors_total{method=\"Version\"} 1\n"), std::string::npos);
  EXPECT_NE(
      text.find("cc_cri_request_duration_seconds_bucket{method=\"Version\",le=\"0.001\"} 0\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("cc_cri_request_duration_seconds_bucket{method=\"Version\",le=\"0.0025\"} 2\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("cc_cri_request_duration_seconds_bucket{method=\"Version\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("cc_cri_request_duration_seconds_count{method=\"Version\"} 2\n"),
            std::string::npos);
}

TEST(RpcStats, TheLatencySumKeepsEveryDigit) {
  // Days of calls: at 6 significant digits, rate() over the sum would see it stand still.
  RpcStats stats;
  stats.record("ListPodSandbox", std::chrono::nanoseconds(123456789012345), true);
  stats.record("ListPodSandbox", microseconds(1), true);
  const std::string text = stats.prometheusText("cc_cri");
  EXPECT_NE(text.find("cc_cri_request_duration_seconds_sum{method=\"ListPodSandbox\"} "
                      "123456.789013345\n"),
            std::string::npos)
      << text;
}

TEST(RpcStats, ConcurrentRecordsAreAllCounted) {
  RpcStats stats;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i)
        stats.record("PodSandboxStatus", microseconds(i), i % 10 != 0);
    });
  }
  for (auto& t : threads) t.join();
  const auto snapshot = stats.snapshot();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].calls, 40000u);
  EXPECT_EQ(snapshot[0].errors, 4000u);
}

}  // namespace
}  // namespace cri

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "base/backoff.h"
#include "base/blocking_queue.h"
#include "base/prometheus_text.h"
#include "base/short_id.h"
#include "base/work_queue.h"

namespace base {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Backoff, WithoutJitterDoublesUpToTheCapAndResets) {
  Backoff backoff(seconds(1), seconds(5), /*jitter=*/0);
  EXPECT_EQ(backoff.next(), seconds(1));
  EXPECT_EQ(backoff.next(), seconds(2));
  EXPECT_EQ(backoff.next(), seconds(4));
  EXPECT_EQ(backoff.next(), seconds(5));
  EXPECT_EQ(backoff.next(), seconds(5));
  backoff.reset();
  EXPECT_EQ(backoff.next(), seconds(1));
}

TEST(Backoff, JitterDrawsFromTheLowerPartOfEachStepAndSpreads) {
  std::set<milliseconds::rep> first_delays;
  for (int i = 0; i < 200; ++i) {
    Backoff backoff(milliseconds(1000), milliseconds(8000));  // jitter 0.5
    const milliseconds first = backoff.next();
    EXPECT_GE(first, milliseconds(500));
    EXPECT_LE(first, milliseconds(1000));
    const milliseconds second = backoff.next();
    EXPECT_GE(second, milliseconds(1000));
    EXPECT_LE(second, milliseconds(2000));
    first_delays.insert(first.count());
  }
  EXPECT_GT(first_delays.size(), 50u) << "200 backoffs in step";
}

TEST(BlockingQueue, IsFirstInFirstOutAndRefusesBeyondItsCapacity) {
  BlockingQueue<int> queue(2);
  EXPECT_TRUE(queue.push(1));
  EXPECT_TRUE(queue.push(2));
  EXPECT_FALSE(queue.push(3));
  EXPECT_EQ(queue.pop(), 1);
  EXPECT_EQ(queue.pop(), 2);
  EXPECT_EQ(queue.size(), 0u);
}

TEST(BlockingQueue, DrainedOnlyOnceTheConsumerIsDone) {
  BlockingQueue<int> queue;
  queue.push(1);
  EXPECT_FALSE(queue.waitDrained(milliseconds(0)));
  ASSERT_EQ(queue.pop(), 1);
  EXPECT_FALSE(queue.waitDrained(milliseconds(0))) << "taken is not handled";
  queue.done();
  EXPECT_TRUE(queue.waitDrained(milliseconds(0)));
}

TEST(BlockingQueue, CloseWakesTheConsumerAndDropsWhatIsQueued) {
  BlockingQueue<int> queue;
  std::optional<int> popped = 7;
  std::thread consumer([&] { popped = queue.pop(); });
  EXPECT_FALSE(queue.waitClosed(milliseconds(10)));
  queue.close();
  consumer.join();
  EXPECT_EQ(popped, std::nullopt);
  EXPECT_TRUE(queue.waitClosed(seconds(0)));
  EXPECT_FALSE(queue.push(1));
  BlockingQueue<int> full;
  full.push(1);
  full.push(2);
  EXPECT_EQ(full.close(), 2u);
}

TEST(WorkQueue, HandsOutEachKeyOnceAndTheEarliestDueTimeWins) {
  WorkQueue queue;
  queue.addAfter("a", std::chrono::hours(1));
  queue.add("b");
  queue.add("b");
  queue.add("a");                              // earlier than its queued time: moves up
  queue.addAfter("b", std::chrono::hours(1));  // later than its queued time: no change
  EXPECT_EQ(queue.size(), 2u);
  const auto soon = std::chrono::steady_clock::now() + seconds(1);
  std::set<std::string> got = {*queue.get(soon), *queue.get(soon)};
  EXPECT_EQ(got, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(queue.get(std::chrono::steady_clock::now() + milliseconds(10)), std::nullopt);
}

TEST(WorkQueue, WaitsForADelayedKey) {
  WorkQueue queue;
  const auto start = std::chrono::steady_clock::now();
  queue.addAfter("a", milliseconds(30));
  EXPECT_EQ(queue.get(start + seconds(10)), "a");
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(30));
}

TEST(WorkQueue, ShutDownWakesAWaitingWorker) {
  WorkQueue queue;
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(20));
    queue.shutDown();
  });
  EXPECT_EQ(queue.get(std::chrono::steady_clock::now() + std::chrono::hours(1)), std::nullopt);
  EXPECT_TRUE(queue.shuttingDown());
  stopper.join();
  queue.add("late");
  EXPECT_EQ(queue.size(), 0u);
}

TEST(PrometheusText, WritesFamiliesAndSamplesInTheTextFormat) {
  PrometheusText text;
  text.single("x_total", "counter", "What x counts.", 3);
  text.family("y_seconds", "histogram", "How long y takes.")
      .sample("y_seconds_sum", "method=\"A\"", 0.1 + 0.2);
  EXPECT_EQ(text.text(),
            "# HELP x_total What x counts.\n"
            "# TYPE x_total counter\n"
            "x_total 3\n"
            "# HELP y_seconds How long y takes.\n"
            "# TYPE y_seconds histogram\n"
            "y_seconds_sum{method=\"A\"} 0.30000000000000004\n");
}

TEST(ShortId, IsCrictlsThirteenCharacters) {
  EXPECT_EQ(shortId("4bcd2d10936290d942213f4524915776a65e07bb999643a24131b24173b2f197"),
            "4bcd2d1093629");
  EXPECT_EQ(shortId("abc"), "abc");
}

}  // namespace
}  // namespace base

// base::HashedLru, the flat LRU behind the Event recorder's caches: against a plain list + map
// model, with keys that collide in the table, and its footprint.
#include "base/hashed_lru.h"

#include <gtest/gtest.h>

#include <list>
#include <map>
#include <random>
#include <string>

namespace base {
namespace {

TEST(HashedLruTest, EvictsTheLeastRecentlyUsed) {
  HashedLru<int> lru(3);
  lru.put(1, 10);
  lru.put(2, 20);
  lru.put(3, 30);
  ASSERT_NE(lru.get(1), nullptr);  // 1 is now the most recent: 2 is the oldest
  lru.put(4, 40);
  EXPECT_EQ(lru.size(), 3u);
  EXPECT_EQ(lru.peek(2), nullptr);
  EXPECT_EQ(*lru.peek(1), 10);
  EXPECT_EQ(lru.keysByRecency(), (std::vector<uint64_t>{4, 1, 3}));
  ASSERT_NE(lru.peek(3), nullptr);  // peek does not touch
  lru.put(5, 50);
  EXPECT_EQ(lru.peek(3), nullptr);
  EXPECT_EQ(lru.keysByRecency(), (std::vector<uint64_t>{5, 4, 1}));
  lru.put(4, 41);  // an update touches
  EXPECT_EQ(lru.keysByRecency(), (std::vector<uint64_t>{4, 5, 1}));
  EXPECT_EQ(*lru.peek(4), 41);
  uint64_t oldest = 0;
  ASSERT_NE(lru.oldest(&oldest), nullptr);
  EXPECT_EQ(oldest, 1u);
}

TEST(HashedLruTest, EvictOldestWhileStopsAtTheFirstThatStays) {
  HashedLru<int> lru(10);
  for (int i = 0; i < 6; ++i) lru.put(i, i);
  lru.get(0);  // 0 is now the newest: 1 is the oldest
  EXPECT_EQ(lru.evictOldestWhile([](int v) { return v < 3; }), 2u);  // 1 and 2; 3 stays
  EXPECT_EQ(lru.keysByRecency(), (std::vector<uint64_t>{0, 5, 4, 3}));
  EXPECT_EQ(lru.evictOldestWhile([](int) { return true; }), 4u);
  EXPECT_TRUE(lru.empty());
  EXPECT_EQ(lru.oldest(), nullptr);
}

// A reference model, and random operations on keys from a small range (so that entries come and
// go) and with equal low or high bits (so that probe runs form and wrap around); with few erases
// (full, evicting) and with many (shrinking).
TEST(HashedLruTest, MatchesAListAndMapModel) {
  for (const auto& [stride, operations] : std::vector<std::pair<uint64_t, int>>{
           {1, 4}, {1ull << 32, 4}, {0x9E3779B97F4A7C15ull, 4}, {1, 7}, {1ull << 32, 7}}) {
    HashedLru<std::string> lru(50);
    std::list<uint64_t> order;  // most recent first
    std::map<uint64_t, std::string> values;
    std::mt19937_64 random(42);
    const auto touch = [&](uint64_t key) {
      order.remove(key);
      order.push_front(key);
    };
    for (int step = 0; step < 20'000; ++step) {
      const uint64_t key = (random() % 80) * stride;
      switch (random() % operations) {
        case 0:
        case 1: {
          const std::string value = std::to_string(step);
          lru.put(key, value);
          values[key] = value;
          touch(key);
          if (values.size() > 50) {
            values.erase(order.back());
            order.pop_back();
          }
          break;
        }
        case 2: {
          std::string* got = lru.get(key);
          ASSERT_EQ(got != nullptr, values.contains(key)) << step;
          if (got != nullptr) {
            EXPECT_EQ(*got, values[key]);
            touch(key);
          }
          break;
        }
        default:
          ASSERT_EQ(lru.erase(key), values.erase(key) == 1) << step;
          order.remove(key);
          break;
      }
      ASSERT_EQ(lru.size(), values.size()) << step;
      ASSERT_EQ(lru.keysByRecency(), std::vector<uint64_t>(order.begin(), order.end())) << step;
    }
    for (const auto& [key, value] : values) EXPECT_EQ(*lru.peek(key), value);
  }
}

TEST(HashedLruTest, FootprintAtCapacityAndAfterShrinking) {
  struct Small {
    int64_t a;
    int64_t b;
  };
  HashedLru<Small> lru(4096);
  for (uint64_t i = 0; i < 100'000; ++i) lru.put(i * 7919, Small{1, 2});
  EXPECT_EQ(lru.size(), 4096u);
  // 32-byte entries and 8 bytes of table each: 40 bytes an entry, nothing more.
  EXPECT_EQ(HashedLru<Small>::entryBytes(), 32u);
  EXPECT_EQ(lru.allocatedBytes(), 4096u * (32 + 8));
  lru.evictOldestWhile([&](const Small&) { return lru.size() > 10; });
  EXPECT_EQ(lru.size(), 10u);
  EXPECT_LT(lru.allocatedBytes(), 64u * (32 + 8));
  for (uint64_t i = 0; i < 100'000; ++i) lru.put(i, Small{});
  EXPECT_EQ(lru.allocatedBytes(), 4096u * (32 + 8));
}

}  // namespace
}  // namespace base

#include "k8s/pod_cache.h"

#include <gtest/gtest.h>

namespace k8s {
namespace {

Pod pod(const std::string& uid, const std::string& version,
        std::map<std::string, std::string> annotations = {}) {
  Pod p;
  p.uid = uid;
  p.namespace_ = "ns";
  p.name = "pod-" + uid;
  p.node_name = "node";
  p.resource_version = version;
  p.annotations = std::move(annotations);
  return p;
}

TEST(PodCacheTest, UpsertAddsThenUpdatesOnlyWhenTheVersionMoves) {
  PodCache cache;
  auto added = cache.upsert(pod("a", "1"));
  ASSERT_TRUE(added);
  EXPECT_EQ(added->kind, PodChange::Kind::kAdd);
  EXPECT_EQ(added->new_pod, pod("a", "1"));
  EXPECT_FALSE(cache.upsert(pod("a", "1")));  // seen again: not a change
  auto updated = cache.upsert(pod("a", "2", {{"k", "v"}}));
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->kind, PodChange::Kind::kUpdate);
  EXPECT_EQ(updated->old_pod, pod("a", "1"));
  EXPECT_EQ(updated->new_pod, pod("a", "2", {{"k", "v"}}));
  EXPECT_EQ(cache.get("a"), pod("a", "2", {{"k", "v"}}));
}

TEST(PodCacheTest, RemoveCarriesTheLastStateAndIgnoresUnknownPods) {
  PodCache cache;
  cache.upsert(pod("a", "1", {{"k", "v"}}));
  EXPECT_FALSE(cache.remove(pod("b", "5")));
  auto removed = cache.remove(pod("a", "2"));
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->kind, PodChange::Kind::kDelete);
  EXPECT_EQ(removed->old_pod, pod("a", "1", {{"k", "v"}}));
  EXPECT_FALSE(cache.get("a"));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(PodCacheTest, ReplaceDeliversOnlyTheDifferences) {
  PodCache cache;
  cache.upsert(pod("kept", "1"));
  cache.upsert(pod("changed", "1"));
  cache.upsert(pod("gone", "1"));
  const std::vector<PodChange> changes =
      cache.replace({pod("kept", "1"), pod("changed", "2"), pod("new", "3")});
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].kind, PodChange::Kind::kDelete);
  EXPECT_EQ(changes[0].old_pod.uid, "gone");
  EXPECT_EQ(changes[1].kind, PodChange::Kind::kUpdate);
  EXPECT_EQ(changes[1].new_pod.uid, "changed");
  EXPECT_EQ(changes[2].kind, PodChange::Kind::kAdd);
  EXPECT_EQ(changes[2].new_pod.uid, "new");
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.list().size(), 3u);
}

}  // namespace
}  // namespace k8s

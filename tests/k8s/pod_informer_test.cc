// The informer against the fake API server: each change of this node's Pods reaches the handler
// once and in order, whatever happens to the connection and the server.
#include "k8s/pod_informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "absl/cleanup/cleanup.h"
#include "tests/fakeapi/fake_api_server.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/k8s/recording_handler.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/files.h"

namespace k8s {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::UnorderedElementsAre;

constexpr char kNode[] = "lab-node";

class PodInformerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start().ok()); }
  void TearDown() override {
    if (informer_) informer_->stop();
  }

  PodInformerOptions options() {
    PodInformerOptions o;
    o.node_name = kNode;
    o.page_size = 2;
    o.min_watch_timeout = 60s;
    o.initial_backoff = 5ms;
    o.max_backoff = 100ms;
    return o;
  }

  void startInformer(PodInformerOptions o) {
    ClusterConfig config;
    config.server = server_.url();
    informer_ = std::make_unique<PodInformer>(config, std::move(o), &handler_);
    informer_->start();
  }

  // Starts the informer and waits for its first list and its watch. The handler calls of the
  // first list move to initial_calls_.
  void startSynced() {
    startInformer(options());
    ASSERT_TRUE(informer_->waitForSync(10s));
    ASSERT_TRUE(server_.waitForOpenWatches(1, 10s));
    initial_calls_ = handler_.calls();
    handler_.clear();
  }

  // Waits for exactly `expected` handler calls from now on, then checks nothing more came
  // after a marker Pod that the watch delivers last.
  void expectCalls(const std::vector<std::string>& expected) {
    server_.createPod("zz", "marker-" + std::to_string(++markers_), kNode);
    const std::string marker = "add zz/marker-" + std::to_string(markers_);
    std::vector<std::string> all = expected;
    all.push_back(marker);
    ASSERT_TRUE(handler_.waitForCalls(all.size())) << ::testing::PrintToString(handler_.calls());
    EXPECT_THAT(handler_.calls(), ElementsAreArray(all));
    handler_.clear();
  }

  std::vector<fakeapi::RecordedRequest> podRequests(bool watches) {
    std::vector<fakeapi::RecordedRequest> found;
    for (auto& request : server_.requests()) {
      if ((request.params.count("watch") != 0) == watches) found.push_back(request);
    }
    return found;
  }
  std::vector<fakeapi::RecordedRequest> watchRequests() { return podRequests(true); }
  std::vector<fakeapi::RecordedRequest> listRequests() { return podRequests(false); }

  fakeapi::FakeApiServer server_;
  k8stest::RecordingHandler handler_;
  std::unique_ptr<PodInformer> informer_;
  std::vector<std::string> initial_calls_;
  int markers_ = 0;
};

// Like client-go's reflector, the first list asks for resourceVersion=0: the watch cache
// answers it, whole, instead of every node of a rolling DaemonSet reading all Pods from etcd.
TEST_F(PodInformerTest, FirstListIsOnlyThisNodesPodsFromTheWatchCache) {
  server_.createPod("rec", "web-0", kNode);
  server_.createPod("rec", "web-1", kNode);
  const std::string uid = server_.createPod("rec", "web-2", kNode, {{"tcpdump.antrea.io", "2"}});
  server_.createPod("rec", "other-0", "other-node");
  server_.createPod("rec", "other-1", "other-node");
  startSynced();
  EXPECT_TRUE(informer_->hasSynced());
  EXPECT_THAT(initial_calls_,
              UnorderedElementsAre("add rec/web-0", "add rec/web-1", "add rec/web-2"));
  const auto lists = listRequests();
  ASSERT_EQ(lists.size(), 1u);  // 3 Pods, a limit of 2: the cache ignores the limit
  EXPECT_EQ(lists[0].params.at("resourceVersion"), "0");
  EXPECT_EQ(lists[0].params.at("fieldSelector"), "spec.nodeName=lab-node");
  EXPECT_EQ(lists[0].params.at("limit"), "2");
  const auto watch = watchRequests().at(0);
  EXPECT_EQ(watch.params.at("allowWatchBookmarks"), "true");
  EXPECT_EQ(watch.params.at("resourceVersion"), std::to_string(server_.resourceVersion()));
  const int timeout = std::stoi(watch.params.at("timeoutSeconds"));
  EXPECT_GE(timeout, 60);
  EXPECT_LT(timeout, 120);

  auto pod = informer_->list();
  EXPECT_EQ(pod.size(), 3u);
  ASSERT_TRUE(informer_->get(uid));
  EXPECT_EQ(informer_->get(uid)->annotations.at("tcpdump.antrea.io"), "2");
  EXPECT_FALSE(informer_->get("no-such-uid"));
}

// Without a watch cache, resourceVersion=0 is paginated by etcd: the later pages carry only
// their continue token (a resourceVersion next to one is a 400).
TEST_F(PodInformerTest, FirstListWithoutAWatchCacheComesInPages) {
  server_.setWatchCache(false);
  server_.createPod("rec", "web-0", kNode);
  server_.createPod("rec", "web-1", kNode);
  server_.createPod("rec", "web-2", kNode);
  server_.createPod("rec", "other-0", "other-node");
  startSynced();
  EXPECT_THAT(initial_calls_,
              UnorderedElementsAre("add rec/web-0", "add rec/web-1", "add rec/web-2"));
  const auto lists = listRequests();
  ASSERT_EQ(lists.size(), 2u);
  EXPECT_EQ(lists[0].params.at("resourceVersion"), "0");
  EXPECT_EQ(lists[0].params.count("continue"), 0u);
  EXPECT_EQ(lists[1].params.count("resourceVersion"), 0u);
  EXPECT_FALSE(lists[1].params.at("continue").empty());
  for (const auto& list : lists) EXPECT_EQ(list.params.at("limit"), "2");
}

// A handler that keeps up sees every change: here each change is made once the one before it
// reached the handler. (Changes that pile up while it is busy collapse per Pod: see
// PodInformerBacklogTest.)
TEST_F(PodInformerTest, EachChangeOnceAndInOrder) {
  startSynced();
  const auto handled = [&](size_t calls) { ASSERT_TRUE(handler_.waitForCalls(calls)); };
  server_.createPod("rec", "web-0", kNode);
  handled(1);
  server_.createPod("rec", "elsewhere", "other-node");
  server_.setAnnotation("rec", "web-0", "tcpdump.antrea.io", "3");
  handled(2);
  server_.setAnnotation("rec", "elsewhere", "tcpdump.antrea.io", "3");
  server_.setAnnotation("rec", "web-0", "tcpdump.antrea.io", "4");
  handled(3);
  server_.removeAnnotation("rec", "web-0", "tcpdump.antrea.io");
  handled(4);
  server_.markTerminating("rec", "web-0");
  handled(5);
  server_.deletePod("rec", "web-0");
  expectCalls({"add rec/web-0", "update rec/web-0 +tcpdump.antrea.io=3",
               "update rec/web-0 +tcpdump.antrea.io=4", "update rec/web-0 -tcpdump.antrea.io",
               "update rec/web-0 terminating", "delete rec/web-0"});
  const PodInformerStats stats = informer_->stats();
  EXPECT_EQ(stats.lists, 1u);
  EXPECT_EQ(stats.relists, 0u);
  EXPECT_EQ(stats.watch_reconnects, 0u);
  EXPECT_EQ(stats.events_received, 7u);
  EXPECT_TRUE(stats.last_sync.has_value());
}

TEST_F(PodInformerTest, DroppedConnectionResumesFromTheLastVersion) {
  server_.createPod("rec", "web-0", kNode);
  startSynced();
  server_.setAnnotation("rec", "web-0", "a", "1");
  expectCalls({"update rec/web-0 +a=1"});
  const uint64_t seen = server_.resourceVersion();
  server_.dropWatches();
  server_.setAnnotation("rec", "web-0", "a", "2");  // maybe before the new watch, maybe after
  expectCalls({"update rec/web-0 +a=2"});
  const auto watches = watchRequests();
  ASSERT_GE(watches.size(), 2u);
  EXPECT_EQ(watches[1].params.at("resourceVersion"), std::to_string(seen));
  EXPECT_EQ(informer_->stats().relists, 0u);
  EXPECT_GE(informer_->stats().watch_reconnects, 1u);
}

TEST_F(PodInformerTest, AnEventCutMidwayIsDeliveredOnceAfterTheResume) {
  server_.createPod("rec", "web-0", kNode);
  startSynced();
  server_.cutNextEvent();
  server_.setAnnotation("rec", "web-0", "a", "1");
  expectCalls({"update rec/web-0 +a=1"});
  EXPECT_EQ(informer_->stats().relists, 0u);
  EXPECT_GE(informer_->stats().watch_reconnects, 1u);
}

TEST_F(PodInformerTest, OneByteChunks) {
  startSynced();
  server_.setChunkSize(1);
  server_.createPod("rec", "web-0", kNode);
  ASSERT_TRUE(handler_.waitForCalls(1));  // else the add and the update may collapse into one
  server_.setAnnotation("rec", "web-0", "a", "1");
  expectCalls({"add rec/web-0", "update rec/web-0 +a=1"});
}

// How the informer's resourceVersion is lost while the server is down.
struct VersionLoss {
  const char* name;
  bool watch_cache;  // on: the restart alone starts a fresh watch window
  bool compact;      // etcd compacts the version away
  fakeapi::WatchExpiry expiry;
};

class PodInformerExpiryTest : public PodInformerTest,
                              public ::testing::WithParamInterface<VersionLoss> {};

TEST_P(PodInformerExpiryTest, ChangesWhileDownAreRelistedAsDifferences) {
  server_.setWatchCache(GetParam().watch_cache);
  server_.createPod("rec", "stays", kNode);
  server_.createPod("rec", "changes", kNode);
  server_.createPod("rec", "goes", kNode);
  startSynced();
  const size_t first_list_pages = listRequests().size();
  server_.setWatchExpiry(GetParam().expiry);
  server_.stop();
  server_.deletePod("rec", "goes");
  server_.setAnnotation("rec", "changes", "tcpdump.antrea.io", "1");
  server_.createPod("rec", "comes", kNode);
  if (GetParam().compact) server_.compact();
  ASSERT_EQ(server_.start(server_.port()), absl::OkStatus());
  ASSERT_TRUE(handler_.waitForCalls(3));
  EXPECT_THAT(
      handler_.calls(),
      ElementsAre("delete rec/goes", "update rec/changes +tcpdump.antrea.io=1", "add rec/comes"));
  handler_.clear();
  expectCalls({});
  EXPECT_EQ(informer_->stats().relists, 1u);
  EXPECT_EQ(informer_->list().size(), 3u + 1u);  // and the marker
  // The cache may be behind what the informer saw: a relist is a consistent read, in pages.
  const auto lists = listRequests();
  EXPECT_EQ(lists[0].params.at("resourceVersion"), "0");
  ASSERT_EQ(lists.size(), first_list_pages + 2u);
  for (size_t i = first_list_pages; i < lists.size(); ++i) {
    EXPECT_EQ(lists[i].params.count("resourceVersion"), 0u) << i;
  }
  EXPECT_FALSE(lists.back().params.at("continue").empty());
}

INSTANTIATE_TEST_SUITE_P(
    Losses, PodInformerExpiryTest,
    ::testing::Values(
        // A v1.28 server fills a fresh watch cache at start: older versions get 410.
        VersionLoss{"RestartWithAFreshWatchCache", true, false, fakeapi::WatchExpiry::kErrorEvent},
        VersionLoss{"EtcdCompactionErrorEvent", false, true, fakeapi::WatchExpiry::kErrorEvent},
        VersionLoss{"EtcdCompactionHttp410", false, true, fakeapi::WatchExpiry::kHttpGone}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(PodInformerTest, ARestartWithNothingChangedResumesTheWatch) {
  server_.createPod("rec", "web-0", kNode);
  startSynced();
  ASSERT_EQ(server_.restart(), absl::OkStatus());
  server_.setAnnotation("rec", "web-0", "a", "1");
  expectCalls({"update rec/web-0 +a=1"});
  EXPECT_EQ(informer_->stats().relists, 0u);
}

// Without a watch cache, the watch history is etcd's: it survives a restart. (One change per
// Pod: the resumed watch delivers them in a burst, and changes of one Pod would collapse.)
TEST_F(PodInformerTest, AnEtcdBackedServerRestartResumesTheWatch) {
  server_.setWatchCache(false);
  server_.createPod("rec", "web-0", kNode);
  server_.createPod("rec", "web-2", kNode);
  startSynced();
  server_.stop();
  server_.setAnnotation("rec", "web-0", "a", "1");
  server_.createPod("rec", "web-1", kNode);
  server_.deletePod("rec", "web-2");
  ASSERT_EQ(server_.start(server_.port()), absl::OkStatus());
  expectCalls({"update rec/web-0 +a=1", "add rec/web-1", "delete rec/web-2"});
  EXPECT_EQ(informer_->stats().relists, 0u);
}

TEST_F(PodInformerTest, MalformedLineMakesItRelistAndGoOn) {
  server_.createPod("rec", "web-0", kNode);
  startSynced();
  server_.injectWatchLine("{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",");
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().relists == 1; }));
  server_.setAnnotation("rec", "web-0", "a", "1");
  expectCalls({"update rec/web-0 +a=1"});  // the relist itself changed nothing
}

TEST_F(PodInformerTest, UnexpectedKindMakesItRelistAndGoOn) {
  startSynced();
  server_.injectWatchLine(
      R"({"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"s"}}})");
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().relists == 1; }));
  server_.createPod("rec", "web-0", kNode);
  expectCalls({"add rec/web-0"});
}

TEST_F(PodInformerTest, BookmarkMovesTheResumeVersion) {
  startSynced();
  server_.createPod("rec", "elsewhere", "other-node");  // moves the version, not for us
  const uint64_t bookmarked = server_.resourceVersion();
  const uint64_t events_before = informer_->stats().events_received;
  server_.sendBookmark();
  ASSERT_TRUE(
      k8stest::waitUntil([&] { return informer_->stats().events_received > events_before; }));
  server_.dropWatches();
  ASSERT_TRUE(k8stest::waitUntil([&] { return watchRequests().size() >= 2; }));
  EXPECT_EQ(watchRequests()[1].params.at("resourceVersion"), std::to_string(bookmarked));
  expectCalls({});
}

// A server (or a proxy) that ends every watch at once must not be hammered: like client-go, a
// watch over in under a second with no event is a failure, retried with backoff.
TEST_F(PodInformerTest, WatchesThatEndAtOnceAreRetriedWithBackoff) {
  PodInformerOptions o = options();
  o.min_watch_timeout = 0s;  // the fake ends each watch at once
  startInformer(o);
  ASSERT_TRUE(informer_->waitForSync(10s));
  const auto first_watch = std::chrono::steady_clock::now();
  ASSERT_TRUE(k8stest::waitUntil([&] { return watchRequests().size() >= 8; }));
  // Pauses of 5 ms doubling up to 100 ms between them, each at least half of that: over 170 ms
  // for the 7 between 8 watches (150 ms allows for a first watch begun before first_watch).
  EXPECT_GE(std::chrono::steady_clock::now() - first_watch, 150ms);
  // Still a working informer: a change is picked up by one of the short watches.
  server_.createPod("rec", "web-0", kNode);
  ASSERT_TRUE(handler_.waitForCalls(1));
  EXPECT_THAT(handler_.calls(), ElementsAre("add rec/web-0"));
  EXPECT_EQ(informer_->stats().relists, 0u);
}

// An ERROR event is no progress: watches refused that way back off like any broken watch.
TEST_F(PodInformerTest, WatchesRefusedWithAnErrorEventAreRetriedWithBackoff) {
  startSynced();
  server_.failNextWatches(8, 500);
  const auto first_failed = std::chrono::steady_clock::now();
  server_.dropWatches();
  ASSERT_TRUE(k8stest::waitUntil([&] { return watchRequests().size() >= 1 + 8; }));
  // As above: at least 170 ms of pauses between the 8 refused watches.
  EXPECT_GE(std::chrono::steady_clock::now() - first_failed, 150ms);
  expectCalls({});
  EXPECT_EQ(informer_->stats().relists, 0u);
}

TEST_F(PodInformerTest, StopIsPromptInAnIdleWatch) {
  startSynced();
  const auto before = std::chrono::steady_clock::now();
  informer_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 500ms);
}

TEST_F(PodInformerTest, StopIsPromptWhileTheServerStalls) {
  server_.setStalled(true);
  startInformer(options());
  ASSERT_TRUE(k8stest::waitUntil([&] { return server_.stalledRequests() == 1; }));
  const auto before = std::chrono::steady_clock::now();
  informer_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 500ms);
  EXPECT_FALSE(informer_->hasSynced());
  server_.setStalled(false);
}

TEST_F(PodInformerTest, WaitsForAnUnreachableServerAndSyncsWhenItComes) {
  server_.createPod("rec", "web-0", kNode);
  server_.stop();
  startInformer(options());
  EXPECT_FALSE(informer_->waitForSync(100ms));
  ASSERT_EQ(server_.start(server_.port()), absl::OkStatus());
  ASSERT_TRUE(informer_->waitForSync(10s));
  EXPECT_THAT(handler_.calls(), ElementsAre("add rec/web-0"));
}

TEST_F(PodInformerTest, ServerErrorsAreRetried) {
  server_.createPod("rec", "web-0", kNode);
  server_.failNextRequests(3, 500);
  startSynced();
  EXPECT_THAT(initial_calls_, ElementsAre("add rec/web-0"));
}

// A slow handler must not hold the stream: the watcher keeps reading while it blocks.
TEST_F(PodInformerTest, ASlowHandlerDoesNotStallTheStream) {
  class BlockingHandler : public k8stest::RecordingHandler {
   public:
    void onAdd(const Pod& pod) override {
      std::unique_lock lock(mutex_);
      released_.wait(lock, [&] { return released; });
      RecordingHandler::onAdd(pod);
    }
    void release() {
      {
        std::lock_guard lock(mutex_);
        released = true;
      }
      released_.notify_all();
    }
    std::mutex mutex_;
    std::condition_variable released_;
    bool released = false;
  } blocking;
  ClusterConfig config;
  config.server = server_.url();
  PodInformer informer(config, options(), &blocking);
  // Destroyed before the informer, whose stop() joins the dispatcher: a failed ASSERT below
  // must end the test, not leave it blocked in onAdd forever.
  const absl::Cleanup release_handler = [&] { blocking.release(); };
  server_.createPod("rec", "web-0", kNode);
  informer.start();
  ASSERT_TRUE(server_.waitForOpenWatches(1, 10s));  // listed, and watching: handler still blocked
  const uint64_t before = informer.stats().events_received;
  for (int i = 0; i < 20; ++i) server_.createPod("rec", "more-" + std::to_string(i), kNode);
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer.stats().events_received == before + 20; }));
  EXPECT_TRUE(blocking.calls().empty());
  blocking.release();
  ASSERT_TRUE(blocking.waitForCalls(21));
  informer.stop();
}

// A handler that, once closed, holds every call until opened: a slow handler, on demand.
class GateHandler : public k8stest::RecordingHandler {
 public:
  void onAdd(const Pod& pod) override {
    pass();
    RecordingHandler::onAdd(pod);
  }
  void onUpdate(const Pod& old_pod, const Pod& new_pod) override {
    pass();
    RecordingHandler::onUpdate(old_pod, new_pod);
  }
  void onDelete(const Pod& pod) override {
    pass();
    RecordingHandler::onDelete(pod);
  }
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  bool waitUntilHolding() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 10s, [&] { return holding_; });
  }

 private:
  void pass() {
    std::unique_lock lock(mutex_);
    holding_ = !open_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return open_; });
    holding_ = false;
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = true;
  bool holding_ = false;
};

class PodInformerBacklogTest : public PodInformerTest {
 protected:
  void SetUp() override {
    PodInformerTest::SetUp();
    for (const char* name : {"web-0", "web-1", "web-2"}) server_.createPod("rec", name, kNode);
    ClusterConfig config;
    config.server = server_.url();
    informer_ = std::make_unique<PodInformer>(config, options(), &gate_);
    informer_->start();
    ASSERT_TRUE(informer_->waitForSync(10s));
    ASSERT_TRUE(server_.waitForOpenWatches(1, 10s));
    ASSERT_TRUE(gate_.waitForCalls(3));
    gate_.clear();
  }
  void TearDown() override {
    gate_.open();  // a failed ASSERT must not leave the dispatcher held in the handler
    PodInformerTest::TearDown();
  }

  // Holds the handler in the call for a change of web-2.
  void holdTheHandler() {
    gate_.close();
    server_.setAnnotation("rec", "web-2", "held", "yes");
    ASSERT_TRUE(gate_.waitUntilHolding());
  }
  void waitForEvents(uint64_t count) {
    ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().events_received >= count; }))
        << informer_->stats().events_received << " of " << count;
  }
  // Opens the gate, then as expectCalls() (the held call first).
  void openAndExpectCalls(std::vector<std::string> expected) {
    gate_.open();
    server_.createPod("zz", "marker", kNode);
    expected.insert(expected.begin(), "update rec/web-2 +held=yes");
    expected.push_back("add zz/marker");
    ASSERT_TRUE(gate_.waitForCalls(expected.size())) << ::testing::PrintToString(gate_.calls());
    EXPECT_THAT(gate_.calls(), ElementsAreArray(expected));
  }

  GateHandler gate_;
};

// 1,000 updates of each of three Pods while the handler is held: three entries queued at most,
// and then each Pod's final state, once.
TEST_F(PodInformerBacklogTest, UpdatesCollapseToEachPodsLatestStateWhileTheHandlerIsHeld) {
  holdTheHandler();
  const uint64_t before = informer_->stats().events_received;
  for (int i = 1; i <= 1000; ++i) {
    for (const char* name : {"web-0", "web-1", "web-2"}) {
      server_.setAnnotation("rec", name, "n", std::to_string(i));
    }
  }
  waitForEvents(before + 3000);
  // (The watcher counts an event just before it queues it.)
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().changes_collapsed == 2997; }));
  PodInformerStats stats = informer_->stats();
  EXPECT_EQ(stats.queued_changes, 3u);
  EXPECT_LE(stats.queue_high_water, 3u + 1u);
  openAndExpectCalls(
      {"update rec/web-0 +n=1000", "update rec/web-1 +n=1000", "update rec/web-2 +n=1000"});
  stats = informer_->stats();
  EXPECT_EQ(stats.queued_changes, 0u);
  EXPECT_LE(stats.queue_high_water, 3u + 1u);
  for (const Pod& pod : informer_->list()) {
    if (pod.namespace_ == "rec") {
      EXPECT_EQ(pod.annotations.at("n"), "1000") << pod.name;
    }
  }
}

// Deleted while queued: a delete. Re-created (a new UID): an add. Added and deleted while
// queued: never seen, as if the watch had been slower. Added then changed: one add, as it is now.
TEST_F(PodInformerBacklogTest, DeletesAndRecreatesWhileTheHandlerIsHeld) {
  holdTheHandler();
  const uint64_t before = informer_->stats().events_received;
  server_.deletePod("rec", "web-0");
  server_.setAnnotation("rec", "web-1", "a", "1");
  server_.markTerminating("rec", "web-1");
  server_.deletePod("rec", "web-1");
  server_.createPod("rec", "brief", kNode);
  server_.setAnnotation("rec", "brief", "a", "1");
  server_.deletePod("rec", "brief");
  const std::string new_uid = server_.createPod("rec", "web-0", kNode);  // re-created
  server_.createPod("rec", "new", kNode);
  server_.setAnnotation("rec", "new", "tcpdump.antrea.io", "2");
  waitForEvents(before + 10);
  // web-0 twice (two UIDs), web-1, brief, new
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().queued_changes == 5; }));
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().changes_collapsed == 5; }));
  openAndExpectCalls({"delete rec/web-0", "delete rec/web-1", "add rec/web-0", "add rec/new"});
  EXPECT_EQ(informer_->get(new_uid)->name, "web-0");
  EXPECT_EQ(informer_->list().size(), 4u);  // web-0 (new), web-2, new, the marker
  EXPECT_LE(informer_->stats().queue_high_water, 5u + 1u);
}

// A relist while the handler is held replaces the whole queue; what the watch sees after it is
// folded into it; the handler then gets the differences with what it saw.
TEST_F(PodInformerBacklogTest, ARelistWhileTheHandlerIsHeldCollapsesTheQueue) {
  holdTheHandler();
  uint64_t events = informer_->stats().events_received;
  for (int i = 1; i <= 100; ++i) server_.setAnnotation("rec", "web-0", "n", std::to_string(i));
  server_.deletePod("rec", "web-1");
  server_.createPod("rec", "web-3", kNode);
  waitForEvents(events + 102);
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().queued_changes == 3; }));
  server_.injectWatchLine("{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",");
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().relists == 1; }));
  ASSERT_TRUE(k8stest::waitUntil([&] { return informer_->stats().queued_changes == 1; }));
  ASSERT_TRUE(server_.waitForOpenWatches(1, 10s));
  events = informer_->stats().events_received;
  const uint64_t collapsed = informer_->stats().changes_collapsed;
  server_.setAnnotation("rec", "web-0", "n", "final");
  server_.createPod("rec", "web-4", kNode);
  server_.deletePod("rec", "web-3");
  waitForEvents(events + 3);
  ASSERT_TRUE(k8stest::waitUntil(
      [&] { return informer_->stats().changes_collapsed == collapsed + 3; }));  // into the list
  EXPECT_EQ(informer_->stats().queued_changes, 1u);
  // The list's differences: deletes first, then in the list's order (by name).
  openAndExpectCalls({"delete rec/web-1", "update rec/web-0 +n=final", "add rec/web-4"});
  EXPECT_LE(informer_->stats().queue_high_water, 5u + 1u);
  EXPECT_EQ(informer_->list().size(), 4u);  // web-0, web-2, web-4, the marker
}

// An exception from the handler must not end the agent (std::terminate) nor its informer.
TEST_F(PodInformerTest, AThrowingHandlerDoesNotStopTheInformer) {
  class ThrowingHandler : public k8stest::RecordingHandler {
   public:
    void onAdd(const Pod& pod) override {
      if (pod.name == "bad") throw std::runtime_error("handler bug");
      RecordingHandler::onAdd(pod);
    }
  } throwing;
  ClusterConfig config;
  config.server = server_.url();
  PodInformer informer(config, options(), &throwing);
  informer.start();
  ASSERT_TRUE(informer.waitForSync(10s));
  server_.createPod("rec", "bad", kNode);
  server_.createPod("rec", "good", kNode);
  ASSERT_TRUE(throwing.waitForCalls(1));
  EXPECT_THAT(throwing.calls(), ElementsAre("add rec/good"));
  EXPECT_EQ(informer.list().size(), 2u);  // the cache has both: only the handler failed
  informer.stop();
}

// The queue between watcher and dispatcher, on its own: what collapses, and into what.
Pod queuedPod(const std::string& uid, const std::string& version) {
  Pod pod;
  pod.uid = uid;
  pod.namespace_ = "rec";
  pod.name = "pod-" + uid;
  pod.node_name = kNode;
  pod.resource_version = version;
  return pod;
}

// "uid: remove+upsert@version", "uid: upsert@version", "uid: remove", "list a@1 b@2".
std::string describe(const PodDeltaQueue::Delta& delta) {
  if (delta.kind == PodDeltaQueue::Delta::Kind::kList) {
    std::string out = "list";
    for (const Pod& pod : delta.pods) out += " " + pod.uid + "@" + pod.resource_version;
    return out;
  }
  std::string out = delta.uid + ":";
  if (delta.remove) out += " remove";
  if (delta.remove && delta.upsert) out += "+";
  if (delta.upsert)
    out += (delta.remove ? "" : " ") + std::string("upsert@") + delta.upsert->resource_version;
  return out;
}

std::vector<std::string> drain(PodDeltaQueue& queue) {
  std::vector<std::string> out;
  while (queue.queued() > 0) {
    out.push_back(describe(*queue.pop()));
    queue.done();
  }
  return out;
}

TEST(PodDeltaQueueTest, ChangesOfOnePodCollapseInTheOrderOfTheirFirstChange) {
  PodDeltaQueue queue;
  for (int version = 1; version <= 1000; ++version) {
    for (const char* uid : {"a", "b", "c"}) queue.upsert(queuedPod(uid, std::to_string(version)));
  }
  queue.upsert(queuedPod("a", "1001"));
  EXPECT_EQ(queue.queued(), 3u);
  EXPECT_EQ(queue.highWater(), 3u);
  EXPECT_EQ(queue.collapsed(), 3'001u - 3u);
  EXPECT_THAT(drain(queue), ElementsAre("a: upsert@1001", "b: upsert@1000", "c: upsert@1000"));
}

TEST(PodDeltaQueueTest, DeletesReplaceWhatIsQueuedAndUpsertsFollowThem) {
  PodDeltaQueue queue;
  queue.upsert(queuedPod("updated-then-deleted", "1"));
  queue.upsert(queuedPod("deleted-then-upserted", "1"));
  queue.remove(queuedPod("updated-then-deleted", "2"));
  queue.remove(queuedPod("deleted-then-upserted", "2"));
  queue.upsert(queuedPod("deleted-then-upserted", "3"));
  queue.remove(queuedPod("deleted", "4"));
  queue.remove(queuedPod("deleted", "4"));
  EXPECT_EQ(queue.highWater(), 3u);
  EXPECT_THAT(drain(queue),
              ElementsAre("updated-then-deleted: remove", "deleted-then-upserted: remove+upsert@3",
                          "deleted: remove"));
}

TEST(PodDeltaQueueTest, AListSupersedesEverythingQueuedAndTakesWhatFollowsIt) {
  PodDeltaQueue queue;
  queue.upsert(queuedPod("a", "1"));
  queue.upsert(queuedPod("b", "1"));
  queue.remove(queuedPod("c", "1"));
  queue.replace({queuedPod("a", "5"), queuedPod("b", "5"), queuedPod("d", "5")});
  EXPECT_EQ(queue.queued(), 1u);
  EXPECT_EQ(queue.highWater(), 4u);  // three keys superseded, until skipped, and the list
  // Until the dispatcher takes it, the watch's changes are folded into the list.
  queue.upsert(queuedPod("a", "6"));
  queue.remove(queuedPod("b", "7"));
  queue.upsert(queuedPod("e", "8"));
  queue.upsert(queuedPod("b", "9"));  // (a formality: a UID is not reused)
  queue.remove(queuedPod("d", "10"));
  EXPECT_EQ(queue.queued(), 1u);
  // A second list replaces the first.
  queue.replace(
      {queuedPod("a", "6"), queuedPod("b", "9"), queuedPod("e", "8"), queuedPod("f", "11")});
  queue.remove(queuedPod("f", "12"));
  EXPECT_EQ(queue.queued(), 1u);
  EXPECT_EQ(queue.highWater(), 4u);
  EXPECT_THAT(drain(queue), ElementsAre("list a@6 b@9 e@8"));
  // After it, changes queue again.
  queue.upsert(queuedPod("a", "13"));
  queue.remove(queuedPod("b", "14"));
  EXPECT_THAT(drain(queue), ElementsAre("a: upsert@13", "b: remove"));

  queue.replace({queuedPod("a", "20")});
  queue.upsert(queuedPod("g", "21"));
  queue.upsert(queuedPod("a", "22"));
  EXPECT_THAT(drain(queue), ElementsAre("list a@22 g@21"));
}

TEST(PodDeltaQueueTest, CloseWakesPopAndDropsWhatIsQueued) {
  PodDeltaQueue queue;
  queue.upsert(queuedPod("a", "1"));
  queue.replace({});
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(queue.close(), 2u);  // a's superseded key and the list's
  });
  // Nothing pops before close(): the list is there, but the test does not take it.
  EXPECT_TRUE(queue.waitClosed(10s));
  closer.join();
  EXPECT_FALSE(queue.pop());
  EXPECT_EQ(queue.queued(), 0u);
}

TEST(PodInformerTlsTest, TlsWithCaFileAndARotatedTokenFile) {
  const testsupport::TempDir temp("informer-tls");
  const std::string& dir = temp.path();
  auto certs = fakeapi::generateTestCertificates(dir);
  E2E_REQUIRE(certs.ok(), "the openssl CLI makes the test certificates");
  fakeapi::FakeApiServerOptions server_options;
  server_options.tls = true;
  server_options.cert_file = certs->server_cert;
  server_options.key_file = certs->server_key;
  server_options.token = "one";
  fakeapi::FakeApiServer server(server_options);
  ASSERT_TRUE(server.start().ok());
  std::ofstream(dir + "/token") << "one";

  ClusterConfig config;
  config.server = server.url();
  config.ca_file = certs->ca_cert;
  config.token_file = dir + "/token";
  k8stest::RecordingHandler handler;
  PodInformerOptions options;
  options.node_name = kNode;
  options.initial_backoff = 5ms;
  options.max_backoff = 50ms;
  PodInformer informer(config, options, &handler);
  server.createPod("rec", "web-0", kNode);
  informer.start();
  ASSERT_TRUE(informer.waitForSync(10s));
  ASSERT_TRUE(server.waitForOpenWatches(1, 10s));

  // The token rotates; the watch is cut; the next watch gets a 401, re-reads the file, resumes.
  std::ofstream(dir + "/token") << "two";
  server.setToken("two");
  server.dropWatches();
  server.setAnnotation("rec", "web-0", "a", "1");
  ASSERT_TRUE(handler.waitForCalls(2));
  EXPECT_THAT(handler.calls(), ElementsAre("add rec/web-0", "update rec/web-0 +a=1"));
  EXPECT_EQ(informer.stats().relists, 0u);
  EXPECT_EQ(server.requests().back().authorization, "Bearer two");
  informer.stop();
}

}  // namespace
}  // namespace k8s

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

TEST_F(PodInformerTest, EachChangeOnceAndInOrder) {
  startSynced();
  server_.createPod("rec", "web-0", kNode);
  server_.createPod("rec", "elsewhere", "other-node");
  server_.setAnnotation("rec", "web-0", "tcpdump.antrea.io", "3");
  server_.setAnnotation("rec", "elsewhere", "tcpdump.antrea.io", "3");
  server_.setAnnotation("rec", "web-0", "tcpdump.antrea.io", "4");
  server_.removeAnnotation("rec", "web-0", "tcpdump.antrea.io");
  server_.markTerminating("rec", "web-0");
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

// Without a watch cache, the watch history is etcd's: it survives a restart.
TEST_F(PodInformerTest, AnEtcdBackedServerRestartResumesTheWatch) {
  server_.setWatchCache(false);
  server_.createPod("rec", "web-0", kNode);
  startSynced();
  server_.stop();
  server_.setAnnotation("rec", "web-0", "a", "1");
  server_.createPod("rec", "web-1", kNode);
  server_.deletePod("rec", "web-0");
  ASSERT_EQ(server_.start(server_.port()), absl::OkStatus());
  expectCalls({"update rec/web-0 +a=1", "add rec/web-1", "delete rec/web-0"});
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

// The Event recorder against the fake API server: fields, repeats, similar Events, the
// per-object rate limit, bounded caches, expiry, retries, and an emit() that never waits for the
// network. Time for the rate limit and the aggregation window is a fake clock's: no sleeps.
#include "k8s/event_recorder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <malloc.h>

#include <mutex>
#include <regex>
#include <set>

#include "tests/fakeapi/fake_api_server.h"
#include "tests/k8s/recording_handler.h"

namespace k8s {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const ObjectReference kWeb0{"Pod", "v1", "rec", "web-0", "bdcee56f-ba43-4c22-bfe5-f76daaa4a6b7"};
const ObjectReference kWeb1{"Pod", "v1", "rec", "web-1", "0b7c5a3e-1d0f-4a51-9c55-2b1f0e6c1e2a"};

class FakeClock : public base::Clock {
 public:
  base::TimePoint now() const override {
    std::lock_guard lock(mutex_);
    return now_;
  }
  void advance(std::chrono::milliseconds by) {
    std::lock_guard lock(mutex_);
    now_ += by;
  }

 private:
  mutable std::mutex mutex_;
  base::TimePoint now_ = base::TimePoint{} + 24h;
};

ObjectReference pod(int i) {
  return ObjectReference{"Pod", "v1", "churn", "pod-" + std::to_string(i),
                         "00000000-0000-0000-0000-" + std::to_string(100'000'000'000 + i)};
}

class EventRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start().ok()); }

  EventRecorderOptions options() {
    EventRecorderOptions o;
    o.host = "lab-node";
    o.initial_retry_delay = 5ms;
    o.max_retry_delay = 20ms;
    o.clock = &clock_;
    return o;
  }

  ClusterConfig config() {
    ClusterConfig c;
    c.server = server_.url();
    return c;
  }

  std::vector<fakeapi::RecordedRequest> eventRequests() {
    std::vector<fakeapi::RecordedRequest> out;
    for (auto& request : server_.requests()) {
      if (request.path.find("/events") != std::string::npos) out.push_back(request);
    }
    return out;
  }

  std::vector<std::string> methods() {
    std::vector<std::string> out;
    for (auto& request : eventRequests()) out.push_back(request.method);
    return out;
  }

  FakeClock clock_;
  fakeapi::FakeApiServer server_;
};

TEST_F(EventRecorderTest, PostsAnEventWithEveryField) {
  EventRecorder recorder(config(), options());
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "tcpdump started, 3 files");
  ASSERT_TRUE(recorder.flush(10s));
  const auto events = server_.events();
  ASSERT_EQ(events.size(), 1u);
  const json& event = events[0];
  EXPECT_EQ(event["apiVersion"], "v1");
  EXPECT_EQ(event["kind"], "Event");
  EXPECT_EQ(event["metadata"]["namespace"], "rec");
  EXPECT_TRUE(std::regex_match(event["metadata"]["name"].get<std::string>(),
                               std::regex("web-0\\.[0-9a-f]{16}")))
      << event["metadata"]["name"];
  EXPECT_EQ(event["involvedObject"], (json{{"apiVersion", "v1"},
                                           {"kind", "Pod"},
                                           {"namespace", "rec"},
                                           {"name", "web-0"},
                                           {"uid", kWeb0.uid}}));
  EXPECT_EQ(event["reason"], "CaptureStarted");
  EXPECT_EQ(event["message"], "tcpdump started, 3 files");
  EXPECT_EQ(event["type"], "Normal");
  EXPECT_EQ(event["source"], (json{{"component", "capture-controller"}, {"host", "lab-node"}}));
  EXPECT_EQ(event["count"], 1);
  EXPECT_TRUE(std::regex_match(event["firstTimestamp"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)")));
  EXPECT_EQ(event["lastTimestamp"], event["firstTimestamp"]);
  EXPECT_EQ(event["reportingComponent"], "capture-controller");
  EXPECT_EQ(event["reportingInstance"], "lab-node");
  EXPECT_EQ(eventRequests().at(0).content_type, "application/json");
  EXPECT_EQ(recorder.stats().created, 1u);
}

// Messages carry bytes from elsewhere (tcpdump's stderr, interface names): JSON needs UTF-8.
TEST_F(EventRecorderTest, InvalidUtf8InAMessageIsPostedAsReplacementCharacters) {
  EventRecorder recorder(config(), options());
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "tcpdump: bad \xc3");
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "if \xff\xfe: no such device");
  ASSERT_TRUE(recorder.flush(10s));
  std::set<std::string> messages;
  for (const json& event : server_.events()) messages.insert(event["message"]);
  EXPECT_EQ(messages,
            (std::set<std::string>{"tcpdump: bad \uFFFD", "if \uFFFD\uFFFD: no such device"}));
  EXPECT_EQ(recorder.stats().created, 2u);
  EXPECT_EQ(recorder.stats().failed, 0u);
}

TEST_F(EventRecorderTest, RepeatsArePatchedAndOthersCreated) {
  EventRecorder recorder(config(), options());
  for (int i = 0; i < 3; ++i) {
    recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "no sandbox");
  }
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "another message");
  ASSERT_TRUE(recorder.flush(10s));
  const auto requests = eventRequests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[0].method, "POST");
  for (int i : {1, 2}) {
    EXPECT_EQ(requests[i].method, "PATCH");
    EXPECT_EQ(requests[i].content_type, "application/strategic-merge-patch+json");
    const json patch = json::parse(requests[i].body);
    EXPECT_EQ(patch["count"], i + 1);
    EXPECT_TRUE(patch.contains("lastTimestamp"));
    EXPECT_EQ(patch.size(), 2u);
  }
  EXPECT_EQ(requests[3].method, "POST");
  const std::string name = json::parse(requests[0].body)["metadata"]["name"];
  EXPECT_EQ(requests[1].path, "/api/v1/namespaces/rec/events/" + name);
  EXPECT_EQ(server_.event("rec", name)->at("count"), 3);
  EXPECT_EQ(server_.events().size(), 2u);
  EXPECT_EQ(recorder.stats().created, 2u);
  EXPECT_EQ(recorder.stats().aggregated, 2u);
}

TEST_F(EventRecorderTest, APatchOfAnExpiredEventCreatesItAgain) {
  EventRecorder recorder(config(), options());
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "m");
  ASSERT_TRUE(recorder.flush(10s));
  const std::string first = server_.events().at(0)["metadata"]["name"];
  server_.expireEvent("rec", first);
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "m");
  ASSERT_TRUE(recorder.flush(10s));
  const auto requests = eventRequests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].method, "PATCH");
  EXPECT_EQ(requests[2].method, "POST");
  const auto events = server_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0]["metadata"]["name"], first);
  EXPECT_EQ(events[0]["count"], 2);  // the count goes on, as with client-go
  // ...and later repeats patch the new one.
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "m");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(server_.events().at(0)["count"], 3);
}

TEST_F(EventRecorderTest, ServerErrorsAreRetried) {
  server_.failNextRequests(2, 500);
  EventRecorder recorder(config(), options());
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "m");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(eventRequests().size(), 3u);
  EXPECT_EQ(server_.events().size(), 1u);
  EXPECT_EQ(recorder.stats().failed, 0u);
}

TEST_F(EventRecorderTest, RetriesAreBounded) {
  server_.failNextRequests(1000, 503);
  EventRecorderOptions o = options();
  o.max_attempts = 3;
  EventRecorder recorder(config(), o);
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "m");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(eventRequests().size(), 3u);
  EXPECT_EQ(recorder.stats().failed, 1u);
}

TEST_F(EventRecorderTest, ARefusedEventIsNotRetried) {
  server_.setToken("not-ours");
  EventRecorder recorder(config(), options());
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "m");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(eventRequests().size(), 1u);
  EXPECT_EQ(recorder.stats().failed, 1u);
}

TEST_F(EventRecorderTest, AStalledServerNeverBlocksEmit) {
  server_.setStalled(true);
  EventRecorderOptions o = options();
  o.queue_capacity = 100;
  EventRecorder recorder(config(), o);
  recorder.emit(kWeb0, EventType::kNormal, "First", "m");
  ASSERT_TRUE(k8stest::waitUntil([&] { return server_.stalledRequests() == 1; }));
  const auto before = std::chrono::steady_clock::now();
  for (int i = 0; i < 10'000; ++i) {
    recorder.emit(kWeb0, EventType::kNormal, "Reason", "message " + std::to_string(i));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);  // 10,000 emits, nothing waited
  EXPECT_EQ(recorder.stats().dropped_queue_full, 10'000u - 100u);
  EXPECT_FALSE(recorder.flush(50ms));
  const auto stopping = std::chrono::steady_clock::now();
  recorder.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 500ms);
  server_.setStalled(false);
}

TEST_F(EventRecorderTest, AnAbsentServerNeverBlocksEmit) {
  const ClusterConfig absent = config();
  server_.stop();
  EventRecorderOptions o = options();
  o.max_attempts = 2;
  EventRecorder recorder(absent, o);
  const auto before = std::chrono::steady_clock::now();
  // 100 Pods: the per-object rate limit would drop most of 100 Events of one.
  for (int i = 0; i < 100; ++i) recorder.emit(pod(i), EventType::kNormal, "Reason", "m");
  EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);
  ASSERT_TRUE(recorder.flush(10s));  // each given up after its attempts
  EXPECT_EQ(recorder.stats().failed, 100u);
}

// client-go's spam filter: per object a bucket of 25 tokens, one more every 5 minutes. Exact
// repeats are PATCHes, and take tokens too.
TEST_F(EventRecorderTest, ThirtyEventsAtOnceForOnePodPassTwentyFive) {
  EventRecorder recorder(config(), options());
  for (int i = 0; i < 30; ++i) {
    recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "no sandbox");
  }
  recorder.emit(kWeb1, EventType::kWarning, "CaptureFailed", "no sandbox");  // its own bucket
  ASSERT_TRUE(recorder.flush(10s));
  std::vector<std::string> expected(25, "PATCH");
  expected[0] = "POST";
  expected.push_back("POST");  // web-1's
  EXPECT_EQ(methods(), expected);
  EXPECT_EQ(recorder.stats().created, 2u);
  EXPECT_EQ(recorder.stats().aggregated, 24u);
  EXPECT_EQ(recorder.stats().dropped_spam, 5u);
  const auto events = server_.events();
  ASSERT_EQ(events.size(), 2u);
  for (const json& event : events) {
    EXPECT_EQ(event["count"], event["involvedObject"]["name"] == "web-0" ? 25 : 1);
  }

  // 5 minutes later one token is back: one more passes, the next does not.
  clock_.advance(5min);
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "no sandbox");
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "another reason, same bucket");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(eventRequests().size(), 27u);
  EXPECT_EQ(eventRequests().back().method, "PATCH");
  EXPECT_EQ(recorder.stats().dropped_spam, 6u);
  // web-1 used one token, and got it back: 25, but no more.
  for (int i = 0; i < 25; ++i) recorder.emit(kWeb1, EventType::kNormal, "Reason", "m");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(recorder.stats().dropped_spam, 6u);
  recorder.emit(kWeb1, EventType::kNormal, "Reason", "m");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(recorder.stats().dropped_spam, 7u);
}

TEST_F(EventRecorderTest, AnIdleBucketFillsUpAgain) {
  EventRecorderOptions o = options();
  o.spam_burst = 3;
  o.spam_refill_interval = 1min;
  EventRecorder recorder(config(), o);
  const auto burst = [&] {
    for (int i = 0; i < 5; ++i) recorder.emit(kWeb0, EventType::kNormal, "R", std::to_string(i));
    ASSERT_TRUE(recorder.flush(10s));
  };
  burst();
  EXPECT_EQ(recorder.stats().created, 3u);
  EXPECT_EQ(recorder.stats().dropped_spam, 2u);
  clock_.advance(2min);  // two tokens
  burst();
  EXPECT_EQ(recorder.stats().dropped_spam, 2u + 3u);
  clock_.advance(3min);  // full: 3, not 4
  burst();
  EXPECT_EQ(recorder.stats().dropped_spam, 2u + 3u + 2u);
  EXPECT_EQ(recorder.cacheSizes().spam_buckets, 1u);
}

// client-go's EventAggregator: messages that differ (a pid) under one object, type and reason.
TEST_F(EventRecorderTest, SimilarEventsPastTheThresholdAreCombinedIntoOne) {
  EventRecorder recorder(config(), options());
  const auto started = [](int pid) { return "tcpdump (pid " + std::to_string(pid) + ") started"; };
  for (int pid = 1; pid <= 12; ++pid) {
    recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", started(pid));
  }
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStopped", "another reason: not similar");
  ASSERT_TRUE(recorder.flush(10s));
  const auto requests = eventRequests();
  ASSERT_EQ(requests.size(), 13u);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(requests[i].method, "POST") << i;
    EXPECT_EQ(json::parse(requests[i].body)["message"], started(i + 1));
  }
  // The 11th: a new Event, the combined one; the 12th: a PATCH of it, with its message.
  ASSERT_EQ(requests[10].method, "POST");
  const json combined = json::parse(requests[10].body);
  EXPECT_EQ(combined["message"], "(combined from similar events): " + started(11));
  EXPECT_EQ(combined["reason"], "CaptureStarted");
  EXPECT_EQ(combined["count"], 1);
  const std::string name = combined["metadata"]["name"];
  ASSERT_EQ(requests[11].method, "PATCH");
  EXPECT_EQ(requests[11].path, "/api/v1/namespaces/rec/events/" + name);
  const json patch = json::parse(requests[11].body);
  EXPECT_EQ(patch["count"], 2);
  EXPECT_EQ(patch["message"], "(combined from similar events): " + started(12));
  EXPECT_EQ(requests[12].method, "POST");  // CaptureStopped
  EXPECT_EQ(json::parse(requests[12].body)["message"], "another reason: not similar");
  const auto stored = server_.event("rec", name);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->at("count"), 2);
  EXPECT_EQ(stored->at("message"), "(combined from similar events): " + started(12));
  EXPECT_EQ(server_.events().size(), 12u);
  EXPECT_EQ(recorder.stats().created, 12u);
  EXPECT_EQ(recorder.stats().aggregated, 1u);

  // Past the threshold a message seen before is combined too; the count goes on growing.
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", started(3));
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(server_.event("rec", name)->at("count"), 3);
  EXPECT_EQ(server_.event("rec", name)->at("message"),
            "(combined from similar events): " + started(3));

  // Another Pod's similar Events are its own.
  recorder.emit(kWeb1, EventType::kNormal, "CaptureStarted", started(13));
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(json::parse(eventRequests().back().body)["message"], started(13));

  // A window without similar Events: it starts over, each posted as itself.
  clock_.advance(10min + 1ms);
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", started(14));
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(eventRequests().back().method, "POST");
  EXPECT_EQ(json::parse(eventRequests().back().body)["message"], started(14));
}

TEST_F(EventRecorderTest, SimilarEventsWithinTheWindowKeepCounting) {
  EventRecorderOptions o = options();
  o.aggregation_threshold = 2;
  EventRecorder recorder(config(), o);
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "exit 1");
  clock_.advance(9min);
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "exit 2");
  clock_.advance(9min);  // 18 min after the first, 9 after the last: still one window
  recorder.emit(kWeb0, EventType::kWarning, "CaptureFailed", "exit 3");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(json::parse(eventRequests().back().body)["message"],
            "(combined from similar events): exit 3");
}

// Below the threshold, an exact repeat of one of the similar Events PATCHes that one.
TEST_F(EventRecorderTest, ExactRepeatsAmongSimilarEventsArePatches) {
  EventRecorder recorder(config(), options());
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "pid 1");
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "pid 2");
  recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "pid 1");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(methods(), (std::vector<std::string>{"POST", "POST", "PATCH"}));
  const auto requests = eventRequests();
  EXPECT_EQ(requests[2].path,
            "/api/v1/namespaces/rec/events/" +
                json::parse(requests[0].body)["metadata"]["name"].get<std::string>());
  EXPECT_EQ(json::parse(requests[2].body).size(), 2u);  // count and lastTimestamp only
}

TEST_F(EventRecorderTest, CachesStayWithinTheirCapacities) {
  EventRecorderOptions o = options();
  o.repeat_cache_capacity = 16;
  o.similar_cache_capacity = 8;
  o.spam_cache_capacity = 4;
  EventRecorder recorder(config(), o);
  for (int i = 0; i < 100; ++i) {
    recorder.emit(pod(i), EventType::kNormal, "CaptureStarted", "started");
    recorder.emit(pod(i), EventType::kNormal, "CaptureStopped", "stopped");
  }
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(recorder.stats().created, 200u);
  EventRecorderCacheSizes sizes = recorder.cacheSizes();
  EXPECT_EQ(sizes.repeats, 16u);
  EXPECT_EQ(sizes.similar, 8u);
  EXPECT_EQ(sizes.spam_buckets, 4u);
  // The most recent ones are still known: a repeat of the last Pod's is a PATCH.
  recorder.emit(pod(99), EventType::kNormal, "CaptureStopped", "stopped");
  // The first Pod's were evicted: a repeat is a new Event.
  recorder.emit(pod(0), EventType::kNormal, "CaptureStarted", "started");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(methods().at(200), "PATCH");
  EXPECT_EQ(methods().at(201), "POST");
}

// A Pod gone for long leaves no aggregation record (idle past the window) and no token bucket
// (idle until it would be full again): only the repeats' LRU still holds its Events.
TEST_F(EventRecorderTest, IdleEntriesAreDropped) {
  EventRecorder recorder(config(), options());
  for (int i = 0; i < 50; ++i) recorder.emit(pod(i), EventType::kNormal, "CaptureStarted", "s");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(recorder.cacheSizes().similar, 50u);
  EXPECT_EQ(recorder.cacheSizes().spam_buckets, 50u);
  const auto another = [&] {
    recorder.emit(kWeb0, EventType::kNormal, "CaptureStarted", "s");
    ASSERT_TRUE(recorder.flush(10s));
  };
  clock_.advance(4min);
  another();
  EXPECT_EQ(recorder.cacheSizes().similar, 51u);
  EXPECT_EQ(recorder.cacheSizes().spam_buckets, 51u);  // 1 token short: full again at 5 min
  clock_.advance(2min);
  another();
  EXPECT_EQ(recorder.cacheSizes().similar, 51u);
  EXPECT_EQ(recorder.cacheSizes().spam_buckets, 1u);  // web-0's
  clock_.advance(5min);  // 11 min after the 50 Pods' Events, 5 after web-0's last
  another();
  EXPECT_EQ(recorder.cacheSizes().similar, 1u);
  EXPECT_EQ(recorder.cacheSizes().spam_buckets, 1u);
  EXPECT_EQ(recorder.cacheSizes().repeats, 51u);
}

// An API server that accepts every Event and keeps nothing, so that the heap this process holds
// is the recorder's.
class SinkServer {
 public:
  SinkServer() {
    server_.Post(R"(/api/v1/namespaces/([^/]+)/events)",
                 [](const httplib::Request&, httplib::Response& response) {
                   response.status = 201;
                   response.set_content("{}", "application/json");
                 });
    server_.Patch(R"(/api/v1/namespaces/([^/]+)/events/([^/]+))",
                  [](const httplib::Request&, httplib::Response& response) {
                    response.status = 200;
                    response.set_content("{}", "application/json");
                  });
    server_.set_keep_alive_max_count(100'000);
    server_.set_tcp_nodelay(true);  // else Nagle and delayed ACKs cost 40 ms a request
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    EXPECT_TRUE(k8stest::waitUntil([&] { return server_.is_running(); }));
  }
  ~SinkServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// Bytes allocated with malloc, those of large blocks that glibc maps on their own included.
size_t heapInUse() {
  malloc_trim(0);
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

// 10,000 Events of 5,000 Pods that come and go (a start and a stop each), with the default
// capacities: the caches fill up and stay there, well under 1 MB.
TEST(EventRecorderMemoryTest, AChurnOfPodsHoldsUnderOneMegabyte) {
  SinkServer sink;
  FakeClock clock;
  ClusterConfig config;
  config.server = sink.url();
  EventRecorderOptions o;
  o.host = "lab-node";
  o.clock = &clock;
  EventRecorder recorder(config, o);
  recorder.emit(kWeb0, EventType::kNormal, "Warm", "up");  // the connection, the thread
  ASSERT_TRUE(recorder.flush(10s));
  const size_t before = heapInUse();
  const auto churn = [&](int first) {
    for (int i = first; i < first + 5'000; ++i) {
      recorder.emit(pod(i), EventType::kNormal, "CaptureStarted",
                    "tcpdump (pid " + std::to_string(10'000 + i) + ") writes /capture-pod-" +
                        std::to_string(i) + ".pcap0 ... (5 files of 1 MB)");
      recorder.emit(pod(i), EventType::kNormal, "CaptureStopped",
                    "deleted /capture-pod-" + std::to_string(i) + ".pcap0 ... pcap4");
      if (i % 200 == 199) {
        ASSERT_TRUE(recorder.flush(30s));  // the queue holds 1,024
      }
    }
    ASSERT_TRUE(recorder.flush(30s));
  };
  churn(0);
  EXPECT_EQ(recorder.stats().created, 10'001u);
  EXPECT_EQ(recorder.stats().failed, 0u);
  const EventRecorderCacheSizes full = recorder.cacheSizes();
  EXPECT_EQ(full.repeats, 4096u);
  EXPECT_EQ(full.similar, 4096u);
  EXPECT_EQ(full.spam_buckets, 4096u);
  const size_t grown = heapInUse() - before;
  EXPECT_LT(grown, 1'000'000u) << full.allocated_bytes << " bytes allocated by the caches";
  std::cout << "heap grown by " << grown
            << " bytes; the caches' tables and entries: " << full.allocated_bytes << " bytes\n";
  // Full caches stay full: 10,000 more Events of other Pods, and nothing more held.
  churn(5'000);
  EXPECT_EQ(recorder.stats().created, 20'001u);
  const size_t grown_again = heapInUse() - before - grown;
  EXPECT_LT(static_cast<ptrdiff_t>(grown_again), 16'384);
  std::cout << "then by " << static_cast<ptrdiff_t>(grown_again) << " bytes\n";

  // Hours later those Pods are long gone: only the repeats' LRU keeps their Events.
  clock.advance(3h);
  recorder.emit(kWeb0, EventType::kNormal, "Warm", "up");
  ASSERT_TRUE(recorder.flush(10s));
  EXPECT_EQ(recorder.cacheSizes().similar, 1u);
  EXPECT_EQ(recorder.cacheSizes().spam_buckets, 1u);
  // What is left: the repeats' 4,096 entries (196,608 bytes), little else.
  const size_t left = heapInUse() - before;
  EXPECT_LT(left, 300'000u);
  std::cout << "and " << left << " bytes once the idle entries are gone\n";
}

}  // namespace
}  // namespace k8s

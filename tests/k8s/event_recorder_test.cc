// The Event recorder against the fake API server: fields, aggregation, expiry, retries, and an
// emit() that never waits for the network.
#include "k8s/event_recorder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "tests/fakeapi/fake_api_server.h"
#include "tests/k8s/recording_handler.h"

namespace k8s {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const ObjectReference kWeb0{"Pod", "v1", "rec", "web-0", "bdcee56f-ba43-4c22-bfe5-f76daaa4a6b7"};

class EventRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start().ok()); }

  EventRecorderOptions options() {
    EventRecorderOptions o;
    o.host = "lab-node";
    o.initial_retry_delay = 5ms;
    o.max_retry_delay = 20ms;
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
  for (int i = 0; i < 100; ++i) recorder.emit(kWeb0, EventType::kNormal, "Reason", "m");
  EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);
  ASSERT_TRUE(recorder.flush(10s));  // each given up after its attempts
  EXPECT_EQ(recorder.stats().failed, 100u);
}

}  // namespace
}  // namespace k8s

// The fake answers what the client asks the way the recorded kube-apiserver v1.28 does. Spoken to
// over a raw socket, so that the HTTP framing itself (chunks, the final chunk) is checked.
#include "tests/fakeapi/fake_api_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace fakeapi {
namespace {

using nlohmann::json;

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::vector<std::string> chunks;             // the body's chunks, when chunked
  bool final_chunk = false;                    // the zero-length chunk arrived
  std::string body;                            // chunks joined, or the plain body
};

// Splits a raw HTTP/1.1 response; complete only when the stream was.
RawResponse parseRaw(const std::string& raw) {
  RawResponse response;
  const size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return response;
  std::string head = raw.substr(0, header_end);
  absl::SimpleAtoi(head.substr(9, 3), &response.status);
  size_t line_start = head.find("\r\n");
  while (line_start != std::string::npos) {
    const size_t next = head.find("\r\n", line_start + 2);
    const std::string line = head.substr(line_start + 2, next - line_start - 2);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(c));
      response.headers[name] = line.substr(colon + 2);
    }
    line_start = next;
  }
  std::string rest = raw.substr(header_end + 4);
  if (response.headers["transfer-encoding"] != "chunked") {
    response.body = rest;
    return response;
  }
  size_t at = 0;
  for (;;) {
    const size_t size_end = rest.find("\r\n", at);
    if (size_end == std::string::npos) break;
    size_t size = 0;
    if (!absl::SimpleHexAtoi(rest.substr(at, size_end - at), &size)) break;
    if (size == 0) {
      response.final_chunk = true;
      break;
    }
    if (size_end + 2 + size + 2 > rest.size()) {
      response.body += rest.substr(size_end + 2);  // a chunk cut short
      break;
    }
    response.chunks.push_back(rest.substr(size_end + 2, size));
    response.body += response.chunks.back();
    at = size_end + 2 + size + 2;
  }
  return response;
}

// One request on its own connection; reads until the server closes it, `done` holds, or 10 s.
RawResponse rawRequest(int port, const std::string& method, const std::string& target,
                       const std::string& headers = "", const std::string& body = "",
                       const std::function<bool(const std::string&)>& done = nullptr) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return {};
  }
  const std::string request =
      absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n", headers,
                   body.empty() ? "" : absl::StrCat("Content-Length: ", body.size(), "\r\n"),
                   "Connection: close\r\n\r\n", body);
  (void)!write(fd, request.data(), request.size());
  std::string raw;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline && !(done && done(raw))) {
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, 100) <= 0) continue;
    char buffer[65536];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) break;
    raw.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return parseRaw(raw);
}

std::set<std::string> keysOf(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

std::vector<json> eventsOf(const std::string& body) {
  std::vector<json> events;
  size_t at = 0;
  for (size_t end; (end = body.find('\n', at)) != std::string::npos; at = end + 1) {
    events.push_back(json::parse(body.substr(at, end - at)));
  }
  return events;
}

class FakeApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start().ok()); }

  FakeApiServer server_;
};

TEST_F(FakeApiServerTest, PaginatedListHasTheRecordedShape) {
  server_.createPod("rec", "web-0", "lab-node");
  server_.createPod("rec", "web-1", "lab-node");
  server_.createPod("rec", "web-2", "lab-node");
  server_.createPod("rec", "elsewhere", "other-node");
  const std::string selector = "fieldSelector=spec.nodeName%3Dlab-node";

  const RawResponse first =
      rawRequest(server_.port(), "GET", "/api/v1/pods?" + selector + "&limit=2");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.headers.at("content-type"), "application/json");
  const json page1 = json::parse(first.body);
  const json recorded1 = json::parse(readTestdata("list-page1.json"));
  EXPECT_EQ(keysOf(page1), keysOf(recorded1));
  EXPECT_EQ(keysOf(page1["metadata"]), keysOf(recorded1["metadata"]));
  ASSERT_EQ(page1["items"].size(), 2u);
  EXPECT_EQ(keysOf(page1["items"][0]), keysOf(recorded1["items"][0]));  // no kind, apiVersion
  EXPECT_EQ(keysOf(page1["items"][0]["metadata"]), keysOf(recorded1["items"][0]["metadata"]));

  // The continue token is the real server's: base64url JSON with v, rv and start.
  std::string token_json;
  ASSERT_TRUE(
      absl::WebSafeBase64Unescape(page1["metadata"]["continue"].get<std::string>(), &token_json));
  std::string recorded_token_json;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(recorded1["metadata"]["continue"].get<std::string>(),
                                          &recorded_token_json));
  EXPECT_EQ(keysOf(json::parse(token_json)), keysOf(json::parse(recorded_token_json)));

  // A Pod created between the pages is not in this list: pages come from one version.
  server_.createPod("rec", "web-3", "lab-node");
  const RawResponse second = rawRequest(server_.port(), "GET",
                                        "/api/v1/pods?" + selector + "&limit=2&continue=" +
                                            page1["metadata"]["continue"].get<std::string>());
  ASSERT_EQ(second.status, 200);
  const json page2 = json::parse(second.body);
  EXPECT_EQ(keysOf(page2["metadata"]),
            keysOf(json::parse(readTestdata("list-page2.json"))["metadata"]));
  EXPECT_EQ(page2["metadata"]["resourceVersion"], page1["metadata"]["resourceVersion"]);
  ASSERT_EQ(page2["items"].size(), 1u);
  EXPECT_EQ(page2["items"][0]["metadata"]["name"], "web-2");
}

// A v1.28 server's watch cache serves resourceVersion=0 whole, ignoring the limit; without
// the cache it comes from etcd in pages. A resourceVersion next to a continue token is a 400.
TEST_F(FakeApiServerTest, ResourceVersionZeroListIsWholeFromTheWatchCache) {
  server_.createPod("rec", "web-0", "lab-node");
  server_.createPod("rec", "web-1", "lab-node");
  server_.createPod("rec", "web-2", "lab-node");
  const std::string list = "/api/v1/pods?limit=1&resourceVersion=0";
  const json cached = json::parse(rawRequest(server_.port(), "GET", list).body);
  EXPECT_EQ(cached["items"].size(), 3u);
  EXPECT_FALSE(cached["metadata"].contains("continue"));
  EXPECT_EQ(cached["metadata"]["resourceVersion"], std::to_string(server_.resourceVersion()));

  server_.setWatchCache(false);
  const json page1 = json::parse(rawRequest(server_.port(), "GET", list).body);
  ASSERT_EQ(page1["items"].size(), 1u);
  const std::string token = page1["metadata"]["continue"];
  const std::string next = "/api/v1/pods?limit=1&continue=" + token;
  EXPECT_EQ(json::parse(rawRequest(server_.port(), "GET", next).body)["items"].size(), 1u);
  EXPECT_EQ(rawRequest(server_.port(), "GET", next + "&resourceVersion=0").status, 200);
  const RawResponse refused = rawRequest(server_.port(), "GET", next + "&resourceVersion=6797");
  ASSERT_EQ(refused.status, 400);
  EXPECT_EQ(json::parse(refused.body)["message"],
            "specifying resource version is not allowed when using continue");
}

TEST_F(FakeApiServerTest, UnsupportedFieldSelectorIsABadRequest) {
  const RawResponse response =
      rawRequest(server_.port(), "GET", "/api/v1/pods?fieldSelector=spec.foo%3Dbar");
  ASSERT_EQ(response.status, 400);
  const json status = json::parse(response.body);
  EXPECT_EQ(status["reason"], "BadRequest");
  EXPECT_EQ(status["message"], "field label not supported: spec.foo");
}

TEST_F(FakeApiServerTest, ContinueTokenOfACompactedVersionIsGone) {
  server_.createPod("rec", "web-0", "lab-node");
  server_.createPod("rec", "web-1", "lab-node");
  const json page1 = json::parse(rawRequest(server_.port(), "GET", "/api/v1/pods?limit=1").body);
  server_.setAnnotation("rec", "web-0", "a", "b");
  server_.compact();
  const RawResponse response = rawRequest(
      server_.port(), "GET",
      "/api/v1/pods?limit=1&continue=" + page1["metadata"]["continue"].get<std::string>());
  ASSERT_EQ(response.status, 410);
  const json status = json::parse(response.body);
  EXPECT_EQ(status["reason"], "Expired");
  EXPECT_EQ(status["code"], 410);
}

TEST_F(FakeApiServerTest, WatchIsChunkedOneEventPerChunkEndingAtTimeout) {
  const uint64_t from = server_.resourceVersion();
  server_.createPod("rec", "web-0", "lab-node");
  server_.setAnnotation("rec", "web-0", "tcpdump.antrea.io", "3");
  server_.createPod("rec", "elsewhere", "other-node");
  server_.deletePod("rec", "web-0");

  const RawResponse response =
      rawRequest(server_.port(), "GET",
                 absl::StrCat("/api/v1/pods?fieldSelector=spec.nodeName%3Dlab-node&watch=true&"
                              "allowWatchBookmarks=true&resourceVersion=",
                              from, "&timeoutSeconds=1"));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.at("transfer-encoding"), "chunked");
  EXPECT_TRUE(response.final_chunk);
  // Framed like the recording: each chunk one whole event and its newline.
  const RawResponse recorded = parseRaw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                        readTestdata("watch-http1-chunked.raw"));
  ASSERT_TRUE(recorded.final_chunk);
  for (const auto* framing : {&recorded, &response}) {
    for (const std::string& chunk : framing->chunks) {
      ASSERT_EQ(chunk.back(), '\n');
      EXPECT_EQ(chunk.find('\n'), chunk.size() - 1);
    }
  }
  const std::vector<json> events = eventsOf(response.body);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["type"], "ADDED");
  EXPECT_EQ(events[1]["type"], "MODIFIED");
  EXPECT_EQ(events[1]["object"]["metadata"]["annotations"]["tcpdump.antrea.io"], "3");
  EXPECT_EQ(events[2]["type"], "DELETED");
  const json recorded_event = eventsOf(recorded.body)[0];
  EXPECT_EQ(keysOf(events[1]), keysOf(recorded_event));
  EXPECT_EQ(keysOf(events[1]["object"]), keysOf(recorded_event["object"]));
  EXPECT_EQ(events[1]["object"]["kind"], "Pod");
}

TEST_F(FakeApiServerTest, ChunksCanBeOneByteEach) {
  const uint64_t from = server_.resourceVersion();
  server_.createPod("rec", "web-0", "lab-node");
  server_.setChunkSize(1);
  const RawResponse response = rawRequest(
      server_.port(), "GET",
      absl::StrCat("/api/v1/pods?watch=true&resourceVersion=", from, "&timeoutSeconds=1"));
  ASSERT_TRUE(response.final_chunk);
  ASSERT_GT(response.chunks.size(), 1000u);
  for (const std::string& chunk : response.chunks) ASSERT_EQ(chunk.size(), 1u);
  ASSERT_EQ(eventsOf(response.body).size(), 1u);
}

TEST_F(FakeApiServerTest, WatchFromACompactedVersionGetsTheRecordedErrorEvent) {
  server_.createPod("rec", "web-0", "lab-node");
  server_.compact();
  const RawResponse response =
      rawRequest(server_.port(), "GET", "/api/v1/pods?watch=true&resourceVersion=1");
  ASSERT_EQ(response.status, 200);
  EXPECT_TRUE(response.final_chunk);
  const RawResponse recorded = parseRaw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                                        readTestdata("watch-410-chunked.raw"));
  const std::vector<json> events = eventsOf(response.body);
  const std::vector<json> recorded_events = eventsOf(recorded.body);
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(recorded_events.size(), 1u);
  json expected = recorded_events[0];
  expected["object"]["message"] =
      absl::StrCat("too old resource version: 1 (", server_.resourceVersion() + 1, ")");
  EXPECT_EQ(events[0], expected);
}

TEST_F(FakeApiServerTest, WatchFromACompactedVersionCanBeAnHttp410) {
  server_.compact();
  server_.setWatchExpiry(WatchExpiry::kHttpGone);
  const RawResponse response =
      rawRequest(server_.port(), "GET", "/api/v1/pods?watch=true&resourceVersion=1");
  ASSERT_EQ(response.status, 410);
  EXPECT_EQ(json::parse(response.body)["reason"], "Expired");
}

TEST_F(FakeApiServerTest, InjectedWatchErrorIsOneErrorEvent) {
  server_.failNextWatches(1, 500);
  const std::string target = absl::StrCat(
      "/api/v1/pods?watch=true&resourceVersion=", server_.resourceVersion(), "&timeoutSeconds=1");
  const RawResponse refused = rawRequest(server_.port(), "GET", target);
  ASSERT_EQ(refused.status, 200);
  EXPECT_TRUE(refused.final_chunk);
  const std::vector<json> events = eventsOf(refused.body);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["type"], "ERROR");
  EXPECT_EQ(events[0]["object"]["code"], 500);
  EXPECT_EQ(events[0]["object"]["reason"], "InternalError");
  const RawResponse next = rawRequest(server_.port(), "GET", target);
  EXPECT_TRUE(next.final_chunk);
  EXPECT_TRUE(eventsOf(next.body).empty());
}

TEST_F(FakeApiServerTest, BookmarkHasTheRecordedForm) {
  const uint64_t from = server_.resourceVersion();
  server_.createPod("rec", "web-0", "lab-node");
  server_.sendBookmark();
  const std::string target =
      absl::StrCat("/api/v1/pods?watch=true&resourceVersion=", from, "&timeoutSeconds=1");
  const std::vector<json> with =
      eventsOf(rawRequest(server_.port(), "GET", target + "&allowWatchBookmarks=true").body);
  const std::vector<json> without = eventsOf(rawRequest(server_.port(), "GET", target).body);
  ASSERT_EQ(with.size(), 2u);
  EXPECT_EQ(without.size(), 1u);
  std::string recorded_line = readTestdata("watch-http2-bookmarks.ndjson");
  json recorded = eventsOf(recorded_line).back();
  ASSERT_EQ(recorded["type"], "BOOKMARK");
  recorded["object"]["metadata"]["resourceVersion"] = std::to_string(server_.resourceVersion());
  EXPECT_EQ(with[1], recorded);
}

TEST_F(FakeApiServerTest, CutEventEndsTheStreamWithoutTheFinalChunk) {
  const uint64_t from = server_.resourceVersion();
  const std::string target = absl::StrCat("/api/v1/pods?watch=true&resourceVersion=", from);
  RawResponse response;
  std::thread reader([&] { response = rawRequest(server_.port(), "GET", target); });
  ASSERT_TRUE(server_.waitForOpenWatches(1, std::chrono::seconds(10)));
  server_.cutNextEvent();
  server_.createPod("rec", "web-0", "lab-node");
  reader.join();
  EXPECT_EQ(response.status, 200);
  EXPECT_FALSE(response.final_chunk);
  EXPECT_FALSE(response.body.empty());
  EXPECT_EQ(response.body.find('\n'), std::string::npos);  // half an event, no newline
}

TEST_F(FakeApiServerTest, WrongTokenGetsTheRecorded401) {
  server_.setToken("right");
  const RawResponse wrong =
      rawRequest(server_.port(), "GET", "/api/v1/pods", "Authorization: Bearer wrong\r\n");
  ASSERT_EQ(wrong.status, 401);
  EXPECT_EQ(json::parse(wrong.body), json::parse(readTestdata("unauthorized.json")));
  // curl is answered pretty-printed, byte for byte the recording.
  const RawResponse as_curl =
      rawRequest(server_.port(), "GET", "/api/v1/pods", "User-Agent: curl/7.88.1\r\n");
  EXPECT_EQ(as_curl.body, readTestdata("unauthorized.json"));
  const RawResponse right =
      rawRequest(server_.port(), "GET", "/api/v1/pods", "Authorization: Bearer right\r\n");
  EXPECT_EQ(right.status, 200);
}

TEST_F(FakeApiServerTest, EventsAreCreatedPatchedAndValidatedAsRecorded) {
  const std::string json_type = "Content-Type: application/json\r\n";
  const RawResponse created = rawRequest(server_.port(), "POST", "/api/v1/namespaces/rec/events",
                                         json_type, readTestdata("event-post.request.json"));
  ASSERT_EQ(created.status, 201);
  json stored = json::parse(created.body);
  json recorded = json::parse(readTestdata("event-post.response.json"));
  EXPECT_EQ(keysOf(stored), keysOf(recorded));
  recorded["metadata"].erase("managedFields");  // written by the real server's field manager
  EXPECT_EQ(keysOf(stored["metadata"]), keysOf(recorded["metadata"]));
  for (const char* field : {"involvedObject", "reason", "message", "source", "count", "type",
                            "reportingComponent", "reportingInstance", "firstTimestamp"}) {
    EXPECT_EQ(stored[field], recorded[field]) << field;
  }

  const RawResponse again = rawRequest(server_.port(), "POST", "/api/v1/namespaces/rec/events",
                                       json_type, readTestdata("event-post.request.json"));
  EXPECT_EQ(again.status, 409);

  const std::string name = stored["metadata"]["name"];
  const RawResponse patched =
      rawRequest(server_.port(), "PATCH", "/api/v1/namespaces/rec/events/" + name,
                 "Content-Type: application/strategic-merge-patch+json\r\n",
                 readTestdata("event-patch.request.json"));
  ASSERT_EQ(patched.status, 200);
  const json patched_event = json::parse(patched.body);
  const json recorded_patched = json::parse(readTestdata("event-patch.response.json"));
  EXPECT_EQ(patched_event["count"], recorded_patched["count"]);
  EXPECT_EQ(patched_event["lastTimestamp"], recorded_patched["lastTimestamp"]);
  EXPECT_GT(std::stoull(patched_event["metadata"]["resourceVersion"].get<std::string>()),
            std::stoull(stored["metadata"]["resourceVersion"].get<std::string>()));

  server_.expireEvent("rec", name);
  const RawResponse gone =
      rawRequest(server_.port(), "PATCH", "/api/v1/namespaces/rec/events/" + name,
                 "Content-Type: application/strategic-merge-patch+json\r\n",
                 readTestdata("event-patch.request.json"));
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(json::parse(gone.body)["reason"], "NotFound");

  const RawResponse invalid = rawRequest(server_.port(), "POST", "/api/v1/namespaces/rec/events",
                                         json_type, readTestdata("event-invalid.request.json"));
  ASSERT_EQ(invalid.status, 422);
  EXPECT_EQ(json::parse(invalid.body), json::parse(readTestdata("event-invalid.response.json")));
}

TEST_F(FakeApiServerTest, RestartKeepsThePortAndTheStore) {
  server_.createPod("rec", "web-0", "lab-node");
  const int port = server_.port();
  const uint64_t version = server_.resourceVersion();
  ASSERT_EQ(server_.restart(), absl::OkStatus());
  EXPECT_EQ(server_.port(), port);
  const json list = json::parse(rawRequest(port, "GET", "/api/v1/pods").body);
  EXPECT_EQ(list["metadata"]["resourceVersion"], std::to_string(version));
  EXPECT_EQ(list["items"].size(), 1u);
}

// A v1.28 server's watch cache starts afresh at a restart: a watch from before it expires once
// anything changed; without the cache (etcd), it resumes.
TEST_F(FakeApiServerTest, RestartStartsAFreshWatchWindowWithTheWatchCache) {
  const uint64_t before = server_.resourceVersion();
  const auto watchFrom = [&](uint64_t from) {
    return eventsOf(rawRequest(server_.port(), "GET",
                               absl::StrCat("/api/v1/pods?watch=true&resourceVersion=", from,
                                            "&timeoutSeconds=1"))
                        .body);
  };
  ASSERT_EQ(server_.restart(), absl::OkStatus());
  EXPECT_TRUE(watchFrom(before).empty());  // nothing changed: the window starts right there
  server_.stop();
  server_.createPod("rec", "web-0", "lab-node");
  ASSERT_EQ(server_.start(server_.port()), absl::OkStatus());
  const std::vector<json> expired = watchFrom(before);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0]["type"], "ERROR");
  EXPECT_EQ(expired[0]["object"]["code"], 410);

  server_.setWatchCache(false);
  const uint64_t etcd_before = server_.resourceVersion();
  server_.stop();
  server_.setAnnotation("rec", "web-0", "a", "1");
  ASSERT_EQ(server_.start(server_.port()), absl::OkStatus());
  const std::vector<json> resumed = watchFrom(etcd_before);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(resumed[0]["type"], "MODIFIED");
}

// Another fake (SO_REUSEADDR) or any other socket that took the port while this one was
// stopped makes the restart fail and say why: never two servers sharing one port.
TEST_F(FakeApiServerTest, ARestartOnATakenPortIsAClearError) {
  const int port = server_.port();
  server_.stop();
  FakeApiServer thief;
  ASSERT_EQ(thief.start(port), absl::OkStatus());
  const absl::Status lost = server_.start(port);
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(lost.message().find(absl::StrCat("127.0.0.1:", port, ": another socket took the port")),
            absl::string_view::npos)
      << lost;
}

TEST_F(FakeApiServerTest, InjectedFailuresAnswerAStatus) {
  server_.failNextRequests(1, 503);
  EXPECT_EQ(rawRequest(server_.port(), "GET", "/api/v1/pods").status, 503);
  EXPECT_EQ(rawRequest(server_.port(), "GET", "/api/v1/pods").status, 200);
}

// What kubectl asks (tests/plugin drives the real kubectl against these): discovery, one Pod,
// a merge patch of its annotations, Events by field, a namespace's Pods by label, and 403s.
TEST_F(FakeApiServerTest, DiscoveryServesCoreV1Only) {
  const json versions = json::parse(rawRequest(server_.port(), "GET", "/api").body);
  EXPECT_EQ(versions["kind"], "APIVersions");
  EXPECT_EQ(versions["versions"], json({"v1"}));
  const json groups = json::parse(rawRequest(server_.port(), "GET", "/apis").body);
  EXPECT_EQ(groups["kind"], "APIGroupList");
  EXPECT_TRUE(groups["groups"].empty());
  const json resources = json::parse(rawRequest(server_.port(), "GET", "/api/v1").body);
  EXPECT_EQ(resources["kind"], "APIResourceList");
  EXPECT_EQ(resources["groupVersion"], "v1");
  std::set<std::string> names;
  for (const json& resource : resources["resources"]) names.insert(resource["name"]);
  for (const char* name : {"pods", "pods/exec", "events", "namespaces", "nodes"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
}

TEST_F(FakeApiServerTest, APodIsReadAndMergePatched) {
  const std::string uid = server_.createPod("rec", "web-0", "lab-node", {{"keep", "me"}});
  const RawResponse got = rawRequest(server_.port(), "GET", "/api/v1/namespaces/rec/pods/web-0");
  ASSERT_EQ(got.status, 200);
  const json pod = json::parse(got.body);
  EXPECT_EQ(pod["kind"], "Pod");
  EXPECT_EQ(pod["metadata"]["uid"], uid);
  const RawResponse missing = rawRequest(server_.port(), "GET", "/api/v1/namespaces/rec/pods/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["message"], "pods \"nope\" not found");

  const std::string merge = "Content-Type: application/merge-patch+json\r\n";
  const uint64_t before = server_.resourceVersion();
  const RawResponse patched =
      rawRequest(server_.port(), "PATCH", "/api/v1/namespaces/rec/pods/web-0", merge,
                 R"({"metadata":{"annotations":{"a":"1","keep":null}}})");
  ASSERT_EQ(patched.status, 200);
  const json annotations = server_.pod("rec", "web-0")->at("metadata").at("annotations");
  EXPECT_EQ(annotations.value("a", ""), "1");
  EXPECT_FALSE(annotations.contains("keep"));
  EXPECT_EQ(server_.resourceVersion(), before + 1);
  EXPECT_EQ(json::parse(patched.body)["metadata"]["resourceVersion"], std::to_string(before + 1));
  // A patch that changes nothing writes nothing.
  const RawResponse same =
      rawRequest(server_.port(), "PATCH", "/api/v1/namespaces/rec/pods/web-0", merge,
                 R"({"metadata":{"annotations":{"a":"1","absent":null}}})");
  EXPECT_EQ(same.status, 200);
  EXPECT_EQ(server_.resourceVersion(), before + 1);
  const RawResponse stale =
      rawRequest(server_.port(), "PATCH", "/api/v1/namespaces/rec/pods/web-0", merge,
                 R"({"metadata":{"resourceVersion":"1","annotations":{"a":"2"}}})");
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(rawRequest(server_.port(), "PATCH", "/api/v1/namespaces/rec/pods/web-0",
                       "Content-Type: application/json-patch+json\r\n", "[]")
                .status,
            415);
}

TEST_F(FakeApiServerTest, EventsAreListedByFieldAndPodsByLabel) {
  json event = json::parse(readTestdata("event-post.request.json"));
  event["metadata"]["name"] = "web-0.a";
  ASSERT_EQ(server_.createEvent("rec", event), "web-0.a");
  event["metadata"]["name"] = "web-0.b";
  event["involvedObject"]["uid"] = "other";
  ASSERT_EQ(server_.createEvent("rec", event), "web-0.b");
  const json list = json::parse(
      rawRequest(server_.port(), "GET",
                 "/api/v1/namespaces/rec/events?fieldSelector=involvedObject.uid%3Dother")
          .body);
  EXPECT_EQ(list["kind"], "EventList");
  ASSERT_EQ(list["items"].size(), 1u);
  EXPECT_EQ(list["items"][0]["metadata"]["name"], "web-0.b");
  EXPECT_FALSE(list["items"][0].contains("kind"));
  EXPECT_EQ(rawRequest(server_.port(), "GET",
                       "/api/v1/namespaces/rec/events?fieldSelector=spec.nodeName%3Dx")
                .status,
            400);
  ASSERT_TRUE(server_.patchEvent("rec", "web-0.a", {{"count", 2}}));
  const json got =
      json::parse(rawRequest(server_.port(), "GET", "/api/v1/namespaces/rec/events/web-0.a").body);
  EXPECT_EQ(got["count"], 2);

  server_.createPod("kube-system", "agent-a", "node-a");
  server_.setLabel("kube-system", "agent-a", "role", "agent");
  server_.createPod("kube-system", "agent-b", "node-b");
  server_.setLabel("kube-system", "agent-b", "role", "agent");
  server_.createPod("kube-system", "other", "node-a");
  server_.createPod("rec", "agent-c", "node-a");
  server_.setLabel("rec", "agent-c", "role", "agent");
  const json pods = json::parse(
      rawRequest(server_.port(), "GET",
                 "/api/v1/namespaces/kube-system/pods?labelSelector=role%3Dagent&fieldSelector="
                 "spec.nodeName%3Dnode-a")
          .body);
  ASSERT_EQ(pods["items"].size(), 1u);
  EXPECT_EQ(pods["items"][0]["metadata"]["name"], "agent-a");
  const json set_based = json::parse(
      rawRequest(server_.port(), "GET",
                 "/api/v1/namespaces/kube-system/pods?labelSelector=role%20in%20(agent,x),!nope")
          .body);
  EXPECT_EQ(set_based["items"].size(), 2u);
}

TEST_F(FakeApiServerTest, ForbiddenIsTheRealServersStatus) {
  server_.createPod("rec", "web-0", "lab-node");
  server_.forbid("get", "pods", "system:serviceaccount:rec:nobody");
  const RawResponse denied = rawRequest(server_.port(), "GET", "/api/v1/namespaces/rec/pods/web-0");
  ASSERT_EQ(denied.status, 403);
  const json status = json::parse(denied.body);
  const json recorded = json::parse(readTestdata("forbidden.json"));
  EXPECT_EQ(keysOf(status), keysOf(recorded));
  EXPECT_EQ(status["reason"], "Forbidden");
  EXPECT_EQ(status["message"],
            "pods \"web-0\" is forbidden: User \"system:serviceaccount:rec:nobody\" cannot get "
            "resource \"pods\" in API group \"\" in the namespace \"rec\"");
  EXPECT_EQ(rawRequest(server_.port(), "GET", "/api/v1/namespaces/rec/events").status, 200);
}

}  // namespace
}  // namespace fakeapi

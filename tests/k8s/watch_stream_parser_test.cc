#include "k8s/watch_stream_parser.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "tests/fakeapi/fake_api_server.h"

namespace k8s {
namespace {

using fakeapi::readTestdata;

// The payload of a recorded HTTP/1.1 chunked response, framing removed.
std::string dechunk(const std::string& raw) {
  std::string payload;
  size_t at = 0;
  for (;;) {
    const size_t size_end = raw.find("\r\n", at);
    size_t size = 0;
    if (size_end == std::string::npos ||
        !absl::SimpleHexAtoi(raw.substr(at, size_end - at), &size) || size == 0) {
      break;
    }
    payload += raw.substr(size_end + 2, size);
    at = size_end + 2 + size + 2;
  }
  return payload;
}

struct Collected {
  std::vector<WatchEvent> events;
  std::vector<absl::Status> errors;
};

WatchStreamParser::EventCallback collectInto(Collected& out) {
  return [&out](absl::StatusOr<WatchEvent> event) {
    if (event.ok()) {
      out.events.push_back(std::move(*event));
    } else {
      out.errors.push_back(event.status());
    }
    return true;
  };
}

Collected parseWhole(const std::string& stream) {
  Collected out;
  WatchStreamParser parser;
  parser.feed(stream, collectInto(out));
  return out;
}

TEST(WatchStreamParserTest, RecordedHttp2StreamGivesTheRecordedEvents) {
  const Collected out = parseWhole(readTestdata("watch-http2-bookmarks.ndjson"));
  ASSERT_TRUE(out.errors.empty());
  ASSERT_EQ(out.events.size(), 10u);
  const WatchEvent& annotated = out.events[0];
  EXPECT_EQ(annotated.type, WatchEventType::kModified);
  EXPECT_EQ(annotated.pod.name, "web-0");
  EXPECT_EQ(annotated.pod.namespace_, "rec");
  EXPECT_EQ(annotated.pod.node_name, "lab-node");
  EXPECT_EQ(annotated.resource_version, "6799");
  EXPECT_EQ(annotated.pod.resource_version, "6799");
  EXPECT_TRUE(annotated.pod.annotations.count("tcpdump.antrea.io"));
  EXPECT_EQ(annotated.pod.phase, "Running");
  EXPECT_FALSE(annotated.pod.terminating);
  EXPECT_FALSE(out.events[1].pod.annotations.count("tcpdump.antrea.io"));
  EXPECT_TRUE(out.events[2].pod.terminating);
  EXPECT_EQ(out.events[6].type, WatchEventType::kDeleted);
  EXPECT_EQ(out.events[6].pod.name, "web-2");
  EXPECT_EQ(out.events[6].resource_version, "6812");
  for (size_t i = 7; i < 10; ++i) {
    EXPECT_EQ(out.events[i].type, WatchEventType::kBookmark);
    EXPECT_EQ(out.events[i].resource_version, "6812");
  }
}

TEST(WatchStreamParserTest, EveryCutOfARecordedStreamGivesTheSameEvents) {
  // Both recordings: the HTTP/2 one (events and bookmarks) and the HTTP/1.1 one, de-chunked.
  for (const std::string& stream : {readTestdata("watch-http2-bookmarks.ndjson"),
                                    dechunk(readTestdata("watch-http1-chunked.raw"))}) {
    const Collected whole = parseWhole(stream);
    ASSERT_FALSE(whole.events.empty());
    size_t index = 0;
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
      // Between two lines the parser holds nothing, so a cut only matters to the line it falls
      // in: feed that line in two pieces, then the next line, and expect their two events.
      const size_t line_start = cut == 0 ? 0 : stream.rfind('\n', cut - 1) + 1;
      const size_t line_end = stream.find('\n', cut);
      if (line_end == std::string::npos) break;
      const size_t next_end = stream.find('\n', line_end + 1);
      if (cut > 0 && stream[cut - 1] == '\n') ++index;  // the line that `cut` falls in
      Collected split;
      WatchStreamParser parser;
      parser.feed(std::string_view(stream).substr(line_start, cut - line_start),
                  collectInto(split));
      parser.feed(std::string_view(stream).substr(cut, line_end + 1 - cut), collectInto(split));
      if (next_end != std::string::npos) {
        parser.feed(std::string_view(stream).substr(line_end + 1, next_end - line_end),
                    collectInto(split));
      }
      ASSERT_TRUE(split.errors.empty()) << "cut at " << cut;
      ASSERT_EQ(parser.pendingBytes(), 0u);
      ASSERT_EQ(split.events.size(), next_end != std::string::npos ? 2u : 1u) << "cut at " << cut;
      for (size_t i = 0; i < split.events.size(); ++i) {
        ASSERT_EQ(split.events[i], whole.events[index + i]) << "cut at " << cut;
      }
    }
  }
}

TEST(WatchStreamParserTest, TwoPiecesAtEveryCutOfTheHttp1Recording) {
  const std::string stream = dechunk(readTestdata("watch-http1-chunked.raw"));
  const Collected whole = parseWhole(stream);
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    Collected split;
    WatchStreamParser parser;
    parser.feed(std::string_view(stream).substr(0, cut), collectInto(split));
    parser.feed(std::string_view(stream).substr(cut), collectInto(split));
    ASSERT_TRUE(split.errors.empty()) << "cut at " << cut;
    ASSERT_EQ(split.events, whole.events) << "cut at " << cut;
  }
}

TEST(WatchStreamParserTest, OneByteAtATimeGivesTheSameEvents) {
  const std::string stream = readTestdata("watch-http2-bookmarks.ndjson");
  Collected bytewise;
  WatchStreamParser parser;
  for (char c : stream) parser.feed(std::string_view(&c, 1), collectInto(bytewise));
  EXPECT_EQ(bytewise.events, parseWhole(stream).events);
}

TEST(WatchStreamParserTest, AnEventCutShortStaysPending) {
  const std::string stream = readTestdata("watch-http2-bookmarks.ndjson");
  const size_t first_end = stream.find('\n');
  Collected out;
  WatchStreamParser parser;
  parser.feed(std::string_view(stream).substr(0, first_end + 1 + 100), collectInto(out));
  EXPECT_EQ(out.events.size(), 1u);
  EXPECT_EQ(parser.pendingBytes(), 100u);
}

TEST(WatchStreamParserTest, RecordedExpiredErrorEvent) {
  const Collected out = parseWhole(dechunk(readTestdata("watch-410-chunked.raw")));
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].type, WatchEventType::kError);
  EXPECT_EQ(out.events[0].error_code, 410);
  EXPECT_EQ(out.events[0].error_reason, "Expired");
  EXPECT_EQ(out.events[0].error_message, "too old resource version: 1 (6736)");
}

TEST(WatchStreamParserTest, MalformedAndForeignLinesAreErrorsAndParsingGoesOn) {
  const std::string good = readTestdata("watch-http2-bookmarks.ndjson");
  const std::string first_line = good.substr(0, good.find('\n') + 1);
  const std::vector<std::string> bad_lines = {
      "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\"",  // cut JSON
      "not json at all",
      "[1,2,3]",
      "{\"type\":\"ADDED\"}",
      "{\"type\":\"SOMETHING\",\"object\":{\"kind\":\"Pod\"}}",
      R"({"type":"ADDED","object":{"kind":"Service","apiVersion":"v1","metadata":{"name":"s"}}})",
      R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"}}})",
      R"({"type":"ERROR","object":{"kind":"Pod"}})",
      R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{}}})",
      R"({"type":"MODIFIED","object":{"kind":"Pod","metadata":{"uid":"u","name":"n","namespace":"ns","resourceVersion":"1","annotations":{"a":1}}}})",
  };
  for (const std::string& bad : bad_lines) {
    const Collected out = parseWhole(bad + "\n" + first_line);
    EXPECT_EQ(out.errors.size(), 1u) << bad;
    EXPECT_EQ(out.events.size(), 1u) << bad;  // the line after it still parses
  }
}

TEST(WatchStreamParserTest, StoppingDropsTheRest) {
  const std::string stream = readTestdata("watch-http2-bookmarks.ndjson");
  int seen = 0;
  WatchStreamParser parser;
  EXPECT_FALSE(parser.feed(stream, [&](absl::StatusOr<WatchEvent>) { return ++seen < 2; }));
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(parser.pendingBytes(), 0u);
}

TEST(PodJsonTest, RecordedListItemsParse) {
  auto page = parseDocument(readTestdata("list-page1.json"));
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->kind, "PodList");
  EXPECT_EQ(page->resource_version, "6797");
  EXPECT_EQ(page->continue_token,
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6Njc5Nywic3RhcnQiOiJyZWMvd2ViLTFcdTAwMDAifQ");
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[1].pod.name, "web-1");
  const Pod* pod = &page->objects[0].pod;
  EXPECT_TRUE(checkPodIdentity(*pod).ok());
  EXPECT_EQ(pod->uid, "bdcee56f-ba43-4c22-bfe5-f76daaa4a6b7");
  EXPECT_EQ(pod->namespace_, "rec");
  EXPECT_EQ(pod->name, "web-0");
  EXPECT_EQ(pod->node_name, "lab-node");
  EXPECT_EQ(pod->resource_version, "6777");
  EXPECT_EQ(pod->creation_timestamp, "2026-11-22T17:26:22Z");
  EXPECT_EQ(pod->phase, "Running");
  EXPECT_FALSE(pod->host_network);
  EXPECT_FALSE(pod->terminating);
  EXPECT_EQ(pod->annotations.size(), 1u);  // kubectl's last-applied-configuration
}

TEST(PodJsonTest, LastPageHasNoContinueToken) {
  auto page = parseDocument(readTestdata("list-page2.json"));
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->continue_token, "");
  EXPECT_EQ(page->objects.size(), 1u);
}

TEST(PodJsonTest, AnnotationFilterKeepsOnlyTheNamedOnes) {
  auto item = nlohmann::json::parse(readTestdata("list-page1.json"))["items"][0];
  item["metadata"]["annotations"]["tcpdump.antrea.io"] = "2";
  item["spec"]["hostNetwork"] = true;
  PodParseOptions options;
  options.annotation_keys = std::set<std::string, std::less<>>{"tcpdump.antrea.io"};
  auto page = parseDocument(nlohmann::json{{"kind", "PodList"}, {"items", {item}}}.dump(), options);
  ASSERT_TRUE(page.ok());
  const Pod* pod = &page->objects.at(0).pod;
  EXPECT_EQ(pod->annotations, (std::map<std::string, std::string>{{"tcpdump.antrea.io", "2"}}));
  EXPECT_TRUE(pod->host_network);
}

}  // namespace
}  // namespace k8s

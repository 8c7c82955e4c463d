// The binary's HTTP endpoint: its formats (Prometheus text, /captures JSON and table) and a real
// server on an ephemeral port.
#include "status/status_server.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include "absl/cleanup/cleanup.h"
#include "cri/rpc_stats.h"
#include "status/captures_view.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace status {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ParseHostPort, AcceptsWhatTheFlagDocuments) {
  auto any = parseHostPort(":8080");
  ASSERT_TRUE(any.ok());
  EXPECT_EQ(any->host, "");
  EXPECT_EQ(any->port, 8080);
  auto loopback = parseHostPort("127.0.0.1:0");
  ASSERT_TRUE(loopback.ok());
  EXPECT_EQ(loopback->host, "127.0.0.1");
  EXPECT_EQ(loopback->port, 0);
  auto v6 = parseHostPort("[::1]:9090");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9090);
  for (const char* bad : {"8080", ":", ":http", ":70000", ":-1", "::1:80", "host:80x"}) {
    EXPECT_FALSE(parseHostPort(bad).ok()) << bad;
  }
}

MetricsSnapshot sampleMetrics() {
  MetricsSnapshot m;
  m.captures = {.active = 3,
                .started = 7,
                .stopped = 2,
                .failed = 1,
                .restarts = 4,
                .packets = {.captured = 1000,
                            .received_by_filter = 1200,
                            .dropped_by_kernel = 200,
                            .dropped_by_interface = 0}};
  capture::CaptureStatus web;
  web.pod_namespace = "shop";
  web.pod_name = "web-0";
  web.counts = capture::TcpdumpCounts{
      .captured = 40, .received_by_filter = 45, .dropped_by_kernel = 5, .dropped_by_interface = 1};
  web.bytes_on_disk = 4096;
  capture::CaptureStatus starting;  // no report from its tcpdump yet
  starting.pod_namespace = "shop";
  starting.pod_name = "db-0";
  m.capture_list = {web, starting};
  m.informer.relists = 5;
  m.informer.watch_reconnects = 6;
  m.informer.events_received = 12345678;
  m.events = {
      .created = 9, .aggregated = 10, .dropped_queue_full = 11, .failed = 12, .dropped_spam = 13};
  m.informer_synced = true;
  m.runtime_reachable = false;
  m.heap_bytes = 31457280;
  cri::RpcStats rpc;
  rpc.record("ListPodSandbox", 3ms, true);
  rpc.record("ListPodSandbox", 30ms, false);
  m.cri_text = rpc.prometheusText("capture_controller_cri");
  return m;
}

// name{labels} -> value, and the TYPE of each family, from Prometheus' text format.
struct Exposition {
  std::map<std::string, std::string> samples;
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
};

Exposition parseExposition(const std::string& text) {
  Exposition parsed;
  std::istringstream lines(text);
  std::string line;
  const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*)");
  const std::regex type(R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))");
  const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (\S+))");
  std::smatch match;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, match, help)) {
      parsed.helped.insert(match[1]);
    } else if (std::regex_match(line, match, type)) {
      parsed.types[match[1]] = match[2];
    } else if (std::regex_match(line, match, sample)) {
      parsed.samples[match[1]] = match[3];
    } else {
      ADD_FAILURE() << "not Prometheus text format: " << line;
    }
  }
  return parsed;
}

TEST(PrometheusText, EveryFamilyHasHelpAndTypeAndThePrefix) {
  const Exposition parsed = parseExposition(prometheusText(sampleMetrics()));
  for (const auto& [name, value] : parsed.samples) {
    EXPECT_TRUE(name.starts_with("capture_controller_")) << name;
    std::string family = name.substr(0, name.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!parsed.types.contains(family) && family.ends_with(suffix)) {
        family.resize(family.size() - std::strlen(suffix));
      }
    }
    EXPECT_TRUE(parsed.types.contains(family)) << "no TYPE for " << name;
    EXPECT_TRUE(parsed.helped.contains(family)) << "no HELP for " << name;
  }
}

TEST(PrometheusText, ShowsEveryCounterWithItsValue) {
  const Exposition parsed = parseExposition(prometheusText(sampleMetrics()));
  const std::map<std::string, std::string> expected = {
      {"capture_controller_captures_active", "3"},
      {"capture_controller_captures_started_total", "7"},
      {"capture_controller_captures_stopped_total", "2"},
      {"capture_controller_captures_failed_total", "1"},
      {"capture_controller_capture_restarts_total", "4"},
      {"capture_controller_informer_synced", "1"},
      {"capture_controller_pod_watch_reconnects_total", "6"},
      {"capture_controller_pod_relists_total", "5"},
      {"capture_controller_pod_watch_events_total", "12345678"},  // not 1.23457e+07
      {"capture_controller_events_posted_total", "9"},
      {"capture_controller_events_aggregated_total", "10"},
      {"capture_controller_events_dropped_total", "11"},
      {"capture_controller_events_failed_total", "12"},
      {"capture_controller_events_spam_dropped_total", "13"},
      {"capture_controller_runtime_reachable", "0"},
      {"capture_controller_heap_in_use_bytes", "31457280"},
      {"capture_controller_cri_requests_total{method=\"ListPodSandbox\"}", "2"},
      {"capture_controller_cri_request_errors_total{method=\"ListPodSandbox\"}", "1"},
      {"capture_controller_cri_request_duration_seconds_count{method=\"ListPodSandbox\"}", "2"},
      {"capture_controller_packets_captured_total", "1000"},
      {"capture_controller_packets_received_by_filter_total", "1200"},
      {"capture_controller_packets_dropped_by_kernel_total", "200"},
      {"capture_controller_packets_dropped_by_interface_total", "0"},
      {"capture_controller_capture_packets_captured_total{namespace=\"shop\",pod=\"web-0\"}", "40"},
      {"capture_controller_capture_packets_received_by_filter_total{namespace=\"shop\",pod="
       "\"web-0\"}",
       "45"},
      {"capture_controller_capture_packets_dropped_by_kernel_total{namespace=\"shop\",pod="
       "\"web-0\"}",
       "5"},
      {"capture_controller_capture_packets_dropped_by_interface_total{namespace=\"shop\",pod="
       "\"web-0\"}",
       "1"},
      {"capture_controller_capture_bytes_on_disk{namespace=\"shop\",pod=\"web-0\"}", "4096"},
      {"capture_controller_capture_bytes_on_disk{namespace=\"shop\",pod=\"db-0\"}", "0"},
  };
  for (const auto& [name, value] : expected) {
    ASSERT_TRUE(parsed.samples.contains(name)) << name;
    EXPECT_EQ(parsed.samples.at(name), value) << name;
  }
  EXPECT_EQ(parsed.types.at("capture_controller_captures_active"), "gauge");
  EXPECT_EQ(parsed.types.at("capture_controller_captures_started_total"), "counter");
  EXPECT_EQ(parsed.types.at("capture_controller_cri_request_duration_seconds"), "histogram");
  EXPECT_EQ(parsed.types.at("capture_controller_capture_packets_captured_total"), "counter");
  EXPECT_EQ(parsed.types.at("capture_controller_capture_bytes_on_disk"), "gauge");
  // No counts until its tcpdump reports them: no sample, rather than a 0 that would drop later.
  EXPECT_FALSE(parsed.samples.contains(
      "capture_controller_capture_packets_captured_total{namespace=\"shop\",pod=\"db-0\"}"));
}

class CaptureDir : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.empty()); }
  void write(const std::string& name, size_t bytes) {
    std::ofstream(dir_ + "/" + name) << std::string(bytes, 'x');
  }
  capture::CaptureStatus running(const std::string& name) {
    capture::CaptureStatus status;
    status.pod_uid = "uid-" + name;
    status.pod_namespace = "default";
    status.pod_name = name;
    status.state = capture::CaptureState::kRunning;
    status.files = 3;
    status.file_path = dir_ + "/capture-" + name + ".pcap";
    status.sandbox_id = "4b5c0ffee1234567890abcdef0123456789abcdef0123456789abcdef012345";
    status.netns_path = "/var/run/netns/cni-1234";
    status.pid = 4321;
    return status;
  }
  const testsupport::TempDir temp_{"status-test"};  // removed however the test ends
  const std::string& dir_ = temp_.path();
};

TEST_F(CaptureDir, CapturesJsonListsEachCapturesOwnFilesWithTheirSizes) {
  write("capture-web.pcap0", 1500);
  write("capture-web.pcap1", 24);
  write("capture-web-1.pcap0", 99);  // the Pod web-1's
  write("notes.txt", 5);
  const nlohmann::json document = capturesJson({running("web")});
  ASSERT_EQ(document.at("captures").size(), 1u);
  const nlohmann::json& web = document["captures"][0];
  EXPECT_EQ(web.at("podName"), "web");
  EXPECT_EQ(web.at("state"), "Running");
  EXPECT_EQ(web.at("pid"), 4321);
  EXPECT_EQ(web.at("files"), 3);
  EXPECT_EQ(web.at("netnsPath"), "/var/run/netns/cni-1234");
  const nlohmann::json expected = nlohmann::json::array({
      {{"path", dir_ + "/capture-web.pcap0"}, {"bytes", 1500}},
      {{"path", dir_ + "/capture-web.pcap1"}, {"bytes", 24}},
  });
  EXPECT_EQ(web.at("filesOnDisk"), expected);
  EXPECT_EQ(web.at("bytesOnDisk"), 1524) << "what is on disk now, not at the last resync";
  EXPECT_EQ(web.at("counts"), nullptr) << "tcpdump has not reported yet";
}

TEST_F(CaptureDir, CapturesJsonListsOnlyRegularFilesAndFollowsNoLink) {
  write("capture-web.pcap0", 10);
  write("outside", 5000);
  ASSERT_EQ(::symlink((dir_ + "/outside").c_str(), (dir_ + "/capture-web.pcap1").c_str()), 0);
  ASSERT_EQ(::mkdir((dir_ + "/capture-web.pcap2").c_str(), 0700), 0);
  const nlohmann::json document = capturesJson({running("web")});
  const nlohmann::json& web = document["captures"][0];
  const nlohmann::json expected = nlohmann::json::array({
      {{"path", dir_ + "/capture-web.pcap0"}, {"bytes", 10}},
  });
  EXPECT_EQ(web.at("filesOnDisk"), expected);
  EXPECT_EQ(web.at("bytesOnDisk"), 10) << "not the link's target's size";
}

TEST_F(CaptureDir, CapturesJsonListsTheFilesOldestFirstAsTcpdumpWroteThem) {
  // tcpdump -W 3 wrapped around: pcap1, then pcap2, then pcap0 again (the newest).
  const auto at = [&](const std::string& name, time_t seconds, long nanos) {
    write(name, 10);
    const timespec times[2] = {{seconds, nanos}, {seconds, nanos}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/" + name).c_str(), times, 0), 0);
  };
  at("capture-web.pcap1", 1000, 5);
  at("capture-web.pcap2", 1000, 900);
  at("capture-web.pcap0", 1001, 0);
  nlohmann::json files = capturesJson({running("web")})["captures"][0]["filesOnDisk"];
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0]["path"], dir_ + "/capture-web.pcap1");
  EXPECT_EQ(files[1]["path"], dir_ + "/capture-web.pcap2");
  EXPECT_EQ(files[2]["path"], dir_ + "/capture-web.pcap0");

  // The same time (a coarse clock): the ring's order.
  at("capture-web.pcap2", 1000, 5);
  files = capturesJson({running("web")})["captures"][0]["filesOnDisk"];
  EXPECT_EQ(files[0]["path"], dir_ + "/capture-web.pcap1");
  EXPECT_EQ(files[1]["path"], dir_ + "/capture-web.pcap2");
}

TEST_F(CaptureDir, CapturesTableShowsAShortSandboxIdAndFileSizes) {
  write("capture-web.pcap0", 1500);
  write("capture-web.pcap1", 2'500'000);
  capture::CaptureStatus failing = running("db");
  failing.state = capture::CaptureState::kBackoff;
  failing.pid = 0;
  failing.restarts = 2;
  failing.last_error = "tcpdump exited with status 1";
  capture::CaptureStatus counted = running("web");
  counted.counts = capture::TcpdumpCounts{.captured = 1234,
                                          .received_by_filter = 1300,
                                          .dropped_by_kernel = 66,
                                          .dropped_by_interface = 0};
  auto table = capturesTable(capturesJson({counted, failing}));
  ASSERT_TRUE(table.ok()) << table.status();
  std::istringstream lines(*table);
  std::string header, web, db, error;
  std::getline(lines, header);
  std::getline(lines, web);
  std::getline(lines, db);
  std::getline(lines, error);
  EXPECT_THAT(header, AllOf(HasSubstr("POD"), HasSubstr("STATE"), HasSubstr("SANDBOX"),
                            HasSubstr("NETNS"), HasSubstr("PID"), HasSubstr("PACKETS"),
                            HasSubstr("DROPPED"), HasSubstr("FILES")));
  EXPECT_EQ(header.find("PACKETS"), web.find(" 1234 ") + 1) << "captured, under PACKETS";
  EXPECT_EQ(header.find("DROPPED"), web.find(" 66 ") + 1) << "dropped by the kernel, under it";
  EXPECT_THAT(web, AllOf(HasSubstr("default/web"), HasSubstr("Running"),
                         HasSubstr(" 4b5c0ffee1234 "), Not(HasSubstr("4b5c0ffee12345")),
                         HasSubstr("/var/run/netns/cni-1234"), HasSubstr("4321"),
                         HasSubstr("capture-web.pcap0 (1.5 kB), capture-web.pcap1 (2.5 MB)")));
  EXPECT_EQ(header.find("SANDBOX"), web.find("4b5c0ffee1234")) << "columns line up";
  EXPECT_THAT(db, AllOf(HasSubstr("default/db"), HasSubstr("Backoff")));
  EXPECT_EQ(error, "default/db: last error: tcpdump exited with status 1");
}

TEST(CapturesTable, SaysWhenNothingIsCapturedAndRejectsOtherDocuments) {
  auto empty = capturesTable(capturesJson({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*empty, "no capture is active on this node\n");
  EXPECT_FALSE(capturesTable(nlohmann::json::parse(R"({"kind": "PodList"})")).ok());
  EXPECT_FALSE(capturesTable(nlohmann::json::parse(R"({"captures": [{"podName": 1}]})")).ok());
}

// Holds a fake runtime's answer until opened. Open it in an absl::Cleanup declared after the
// RuntimeCheck, so that a failed assertion cannot leave the check's thread blocked in join.
class Gate {
 public:
  void open() {
    std::call_once(opened_, [this] { promise_.set_value(); });
  }
  void wait() { future_.wait(); }

 private:
  std::promise<void> promise_;
  std::shared_future<void> future_ = promise_.get_future().share();
  std::once_flag opened_;
};

TEST(RuntimeCheck, ReadsTheLastAnswerWhileTheRuntimeHangs) {
  std::atomic<int> calls{0};
  Gate gate;
  RuntimeCheck check(
      [&]() -> absl::StatusOr<std::string> {
        if (calls++ == 0) return std::string("containerd 1.6.20");
        gate.wait();  // a frozen containerd
        return absl::UnavailableError("timed out");
      },
      5ms);
  absl::Cleanup unblock = [&gate] { gate.open(); };
  const RuntimeHealth first = check.start();
  EXPECT_TRUE(first.reachable);
  EXPECT_EQ(first.detail, "containerd 1.6.20");
  ASSERT_TRUE(testsupport::waitUntil([&] { return calls >= 2; }, 10s, 1ms))
      << "the background probe did not run";
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(check.current().reachable);
  EXPECT_LT(std::chrono::steady_clock::now() - before, 100ms);
  gate.open();
  testsupport::waitUntil([&] { return !check.current().reachable; }, 10s, 1ms);
  EXPECT_FALSE(check.current().reachable);
  EXPECT_EQ(check.current().detail, "timed out");
}

class StatusServerTest : public ::testing::Test {
 protected:
  void start(StatusSources sources, StatusServerOptions options = {}) {
    server_ = std::make_unique<StatusServer>(std::move(sources), options);
    auto bound = server_->start(HostPort{"127.0.0.1", 0});
    ASSERT_TRUE(bound.ok()) << bound.status();
    EXPECT_EQ(*bound, "127.0.0.1:" + std::to_string(server_->port()));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(5);
  }
  httplib::Result get(const std::string& path) { return client_->Get(path.c_str()); }
  // The HTTP status, or -1 when nothing answered: a failed request fails the test, not the binary.
  int statusOf(const std::string& path) {
    auto answer = get(path);
    return answer ? answer->status : -1;
  }

  std::unique_ptr<StatusServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(StatusServerTest, HealthzFailsOnlyWhenTheWorkerIsStuck) {
  std::atomic<bool> started{false};
  std::atomic<bool> stuck{false};
  StatusServerOptions options;
  options.max_worker_silence = 200ms;
  start({.worker_pass = [&]() -> std::optional<std::chrono::steady_clock::time_point> {
          if (!started) return std::nullopt;
          return std::chrono::steady_clock::now() - (stuck ? 1s : 0s);
        }},
        options);
  auto starting = get("/healthz");
  ASSERT_TRUE(starting);
  EXPECT_EQ(starting->status, 200);
  EXPECT_EQ(starting->body, "ok (starting)\n");
  started = true;
  EXPECT_EQ(statusOf("/healthz"), 200);
  stuck = true;
  auto failing = get("/healthz");
  ASSERT_TRUE(failing);
  EXPECT_EQ(failing->status, 500);
  EXPECT_THAT(failing->body, HasSubstr("no progress for 1 s"));
}

TEST_F(StatusServerTest, ReadyzNeedsTheListTheRuntimeAndTheWorker) {
  std::atomic<bool> synced{false};
  std::atomic<bool> reachable{false};
  start({
      .informer_synced = [&] { return synced.load(); },
      .runtime =
          [&] {
            return RuntimeHealth{reachable.load(), reachable ? "" : "no socket"};
          },
      .worker_pass = [] { return std::chrono::steady_clock::now(); },
  });
  auto not_ready = get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body,
            "[-]pod-informer failed: the first list of this node's Pods has not arrived\n"
            "[-]container-runtime failed: no socket\n"
            "[+]capture-worker ok\n"
            "readyz check failed\n");
  synced = true;
  EXPECT_EQ(statusOf("/readyz"), 503);
  reachable = true;
  auto ready = get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_THAT(ready->body, HasSubstr("readyz check passed"));
}

TEST_F(StatusServerTest, ReadyzAnswersAtOnceWhileTheRuntimeHangs) {
  Gate gate;
  std::atomic<int> calls{0};
  RuntimeCheck check(
      [&]() -> absl::StatusOr<std::string> {
        if (calls++ > 0) gate.wait();
        return std::string("containerd");
      },
      1ms);
  absl::Cleanup unblock = [&gate] { gate.open(); };
  check.start();
  start({.runtime = [&] { return check.current(); }});
  // The background probe is inside the hung call before the question is asked.
  ASSERT_TRUE(testsupport::waitUntil([&] { return calls >= 2; }, 10s, 1ms))
      << "the background probe did not run";
  const auto before = std::chrono::steady_clock::now();
  auto answer = get("/readyz");
  ASSERT_TRUE(answer);
  EXPECT_THAT(answer->body, HasSubstr("[+]container-runtime ok"));
  EXPECT_LT(std::chrono::steady_clock::now() - before, 1s);
}

TEST_F(StatusServerTest, ServesMetricsAndCaptures) {
  const testsupport::TempDir temp("status-server");
  const std::string& dir = temp.path();
  std::ofstream(dir + "/capture-web.pcap0") << std::string(100, 'x');
  capture::CaptureStatus web;
  web.pod_namespace = "default";
  web.pod_name = "web";
  web.file_path = dir + "/capture-web.pcap";
  web.pid = 77;
  start({.captures = [&] { return std::vector<capture::CaptureStatus>{web}; },
         .metrics = [] { return sampleMetrics(); }});

  auto metrics = get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  EXPECT_EQ(metrics->body, prometheusText(sampleMetrics()));

  auto captures = get("/captures");
  ASSERT_TRUE(captures);
  EXPECT_EQ(captures->get_header_value("Content-Type"), "application/json");
  const auto document = nlohmann::json::parse(captures->body);
  EXPECT_EQ(document, capturesJson({web}));
  EXPECT_EQ(document["captures"][0]["filesOnDisk"][0]["bytes"], 100);
  EXPECT_EQ(statusOf("/nothing"), 404);
}

TEST_F(StatusServerTest, StopsPromptlyAndReleasesThePort) {
  start({});
  const int port = server_->port();
  server_->stop();
  EXPECT_FALSE(get("/healthz"));
  StatusServer again({});
  EXPECT_TRUE(again.start(HostPort{"127.0.0.1", port}).ok());
}

TEST(StatusServer, NoHostMeansEveryAddressIPv6AndIPv4) {
  StatusServer server({});
  auto bound = server.start(HostPort{"", 0});
  ASSERT_TRUE(bound.ok()) << bound.status();
  const bool ipv6 = std::filesystem::exists("/proc/net/if_inet6");
  EXPECT_EQ(*bound, (ipv6 ? "[::]:" : "0.0.0.0:") + std::to_string(server.port()));
  // The kubelet probes the Pod's primary IP: IPv4 on most clusters, IPv6 on IPv6-first ones.
  httplib::Client v4("127.0.0.1", server.port());
  auto over_v4 = v4.Get("/healthz");
  ASSERT_TRUE(over_v4) << "no answer over IPv4";
  EXPECT_EQ(over_v4->status, 200);
  if (ipv6) {
    httplib::Client v6("::1", server.port());
    auto over_v6 = v6.Get("/healthz");
    ASSERT_TRUE(over_v6) << "no answer over IPv6";
    EXPECT_EQ(over_v6->status, 200);
  }
}

TEST(StatusServer, ABusyPortIsAnErrorThatNamesTheAddress) {
  StatusServer first({});
  ASSERT_TRUE(first.start(HostPort{"127.0.0.1", 0}).ok());
  StatusServer second({});
  auto failed = second.start(HostPort{"127.0.0.1", first.port()});
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("127.0.0.1:" + std::to_string(first.port())));
}

}  // namespace
}  // namespace status

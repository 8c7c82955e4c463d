// The libcurl client against the fake API server over real TLS, with certificates made at test
// time.
#include "k8s/http_client.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tests/fakeapi/fake_api_server.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace k8s {
namespace {

using namespace std::chrono_literals;

using testsupport::readFile;

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.empty());
    auto certs = fakeapi::generateTestCertificates(dir_);
    E2E_REQUIRE(certs.ok(),
                "the openssl CLI makes the test certificates: " + certs.status().ToString());
    certs_ = *certs;
  }

  std::unique_ptr<fakeapi::FakeApiServer> startServer(const std::string& token,
                                                      bool client_certs = false) {
    fakeapi::FakeApiServerOptions options;
    options.tls = true;
    options.cert_file = certs_.server_cert;
    options.key_file = certs_.server_key;
    options.token = token;
    if (client_certs) options.client_ca_file = certs_.ca_cert;
    auto server = std::make_unique<fakeapi::FakeApiServer>(options);
    EXPECT_TRUE(server->start().ok());
    return server;
  }

  ClusterConfig configFor(const fakeapi::FakeApiServer& server) {
    ClusterConfig config;
    config.server = server.url();
    config.ca_file = certs_.ca_cert;
    return config;
  }

  void writeToken(const std::string& token) { std::ofstream(dir_ + "/token") << token << "\n"; }

  const testsupport::TempDir temp_{"http-client"};  // removed after the test
  const std::string dir_ = temp_.path();
  fakeapi::TestCertificates certs_;
};

TEST_F(HttpClientTest, TlsWithCaFileAndToken) {
  auto server = startServer("s3cret");
  ClusterConfig config = configFor(*server);
  config.token = "s3cret";
  HttpClient client(config);
  auto response = client.request("GET", "/api/v1/pods");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(nlohmann::json::parse(response->body)["kind"], "PodList");
  EXPECT_EQ(server->requests().back().authorization, "Bearer s3cret");
}

TEST_F(HttpClientTest, TlsWithCaDataAndClientCertificateData) {
  auto server = startServer("", /*client_certs=*/true);
  ClusterConfig config;
  config.server = server->url();
  config.ca_data = readFile(certs_.ca_cert);
  config.client_cert_data = readFile(certs_.client_cert);
  config.client_key_data = readFile(certs_.client_key);
  HttpClient client(config);
  auto response = client.request("GET", "/api/v1/pods");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
}

TEST_F(HttpClientTest, ClientCertificateFiles) {
  auto server = startServer("", /*client_certs=*/true);
  ClusterConfig config = configFor(*server);
  config.client_cert_file = certs_.client_cert;
  config.client_key_file = certs_.client_key;
  EXPECT_EQ(HttpClient(config).request("GET", "/api/v1/pods")->status, 200);
  // Without one, the TLS handshake is refused.
  EXPECT_FALSE(HttpClient(configFor(*server)).request("GET", "/api/v1/pods").ok());
}

TEST_F(HttpClientTest, AServerSignedByAnotherCaIsRefusedUnlessInsecure) {
  auto server = startServer("");
  ClusterConfig config = configFor(*server);
  config.ca_file = certs_.other_ca_cert;
  auto refused = HttpClient(config).request("GET", "/api/v1/pods");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  config.insecure_skip_tls_verify = true;
  EXPECT_EQ(HttpClient(config).request("GET", "/api/v1/pods")->status, 200);
}

// client-go trusts only the configured CA. libcurl, given a CA, would also trust its default CA
// directory (/etc/ssl/certs on Debian and Ubuntu), where every public CA is.
TEST_F(HttpClientTest, AConfiguredCaIsTheOnlyOneTrusted) {
  E2E_REQUIRE_ROOT();
  fakeapi::FakeApiServerOptions options;
  options.tls = true;
  options.cert_file = certs_.other_server_cert;
  options.key_file = certs_.other_server_key;
  fakeapi::FakeApiServer server(options);
  ASSERT_TRUE(server.start().ok());
  // The probe makes the other CA all that curl trusts by default.
  const auto probe = [&](std::vector<std::string> how) {
    std::vector<std::string> argv = {CA_TRUST_PROBE, certs_.other_ca_cert, server.url()};
    argv.insert(argv.end(), how.begin(), how.end());
    auto exit_status = fakeapi::runForExitStatus(argv, /*quiet=*/false);
    return exit_status.ok() ? *exit_status : -1;
  };
  // With no CA configured, the defaults apply: the probe's replaced store is what curl reads.
  ASSERT_EQ(probe({"none"}), 0);
  EXPECT_EQ(probe({"file", certs_.ca_cert}), 1);
  EXPECT_EQ(probe({"data", certs_.ca_cert}), 1);
}

TEST_F(HttpClientTest, A401ReReadsTheTokenFileAndRetries) {
  auto server = startServer("old");
  writeToken("old");
  ClusterConfig config = configFor(*server);
  config.token_file = dir_ + "/token";
  HttpClient client(config);
  EXPECT_EQ(client.request("GET", "/api/v1/pods")->status, 200);
  // The kubelet rotated the token: the server only takes the new one from now on.
  writeToken("new");
  server->setToken("new");
  auto response = client.request("GET", "/api/v1/pods");
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200);
  const auto requests = server->requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[1].authorization, "Bearer old");
  EXPECT_EQ(requests[2].authorization, "Bearer new");
}

TEST_F(HttpClientTest, ARotatedTokenFileIsUsedWithoutWaitingForA401) {
  auto server = startServer("");
  writeToken("first");
  ClusterConfig config = configFor(*server);
  config.token_file = dir_ + "/token";
  HttpClient::Options options;
  options.token_refresh = std::chrono::milliseconds(0);  // re-read before every request
  HttpClient client(config, options);
  ASSERT_TRUE(client.request("GET", "/api/v1/pods").ok());
  writeToken("second");
  ASSERT_TRUE(client.request("GET", "/api/v1/pods").ok());
  const auto requests = server->requests();
  EXPECT_EQ(requests[0].authorization, "Bearer first");
  EXPECT_EQ(requests[1].authorization, "Bearer second");
}

TEST_F(HttpClientTest, AWrongStaticTokenIsUnauthenticated) {
  auto server = startServer("right");
  ClusterConfig config = configFor(*server);
  config.token = "wrong";
  auto response = HttpClient(config).request("GET", "/api/v1/pods");
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 401);
  const absl::Status error = apiError(*response);
  EXPECT_EQ(error.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(error.message(), "HTTP 401 Unauthorized: Unauthorized");
  EXPECT_EQ(server->requests().size(), 1u);  // nothing to re-read: no retry
}

TEST_F(HttpClientTest, StreamDeliversBytesAsTheyArrive) {
  auto server = startServer("");
  HttpClient client(configFor(*server));
  const uint64_t from = server->resourceVersion();
  Cancellation cancel;
  std::string received;
  std::thread writer([&] {
    server->waitForOpenWatches(1, 10s);
    server->createPod("rec", "web-0", "lab-node");
  });
  auto response = client.stream(
      "/api/v1/pods?watch=true&resourceVersion=" + std::to_string(from),
      [&](std::string_view bytes) {
        received.append(bytes);
        return received.find('\n') == std::string::npos;  // stop after the first event
      },
      30s, &cancel);
  writer.join();
  EXPECT_EQ(response.status().code(), absl::StatusCode::kAborted);
  EXPECT_NE(received.find("\"ADDED\""), std::string::npos);
}

// An exception must not unwind through libcurl's C frames: it ends the call as an error.
TEST_F(HttpClientTest, AnExceptionFromTheStreamReaderIsAnError) {
  auto server = startServer("");
  HttpClient client(configFor(*server));
  Cancellation cancel;
  std::thread writer([&] {
    server->waitForOpenWatches(1, 10s);
    server->createPod("rec", "web-0", "lab-node");
  });
  auto response = client.stream(
      "/api/v1/pods?watch=true&resourceVersion=" + std::to_string(server->resourceVersion()),
      [](std::string_view) -> bool { throw std::runtime_error("reader bug"); }, 30s, &cancel);
  writer.join();
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(response.status().message(), "stream reader threw: reader bug");
  EXPECT_EQ(client.request("GET", "/api/v1/pods")->status, 200);  // the client goes on
}

// Whether thread `tid` of this process sleeps in poll(2) for at least `at_least`, read from
// the system call and arguments that /proc shows for a blocked thread ("running" otherwise).
bool sleepsInPoll(pid_t tid, std::chrono::milliseconds at_least) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/syscall");
  std::string number, fds, nfds, timeout;
  in >> number >> fds >> nfds >> timeout;
#ifdef SYS_poll
  if (number != std::to_string(SYS_poll)) return false;
  return std::strtoull(timeout.c_str(), nullptr, 16) >= static_cast<uint64_t>(at_least.count());
#else
  return number == std::to_string(SYS_ppoll);  // its timeout is behind a pointer: any will do
#endif
}

TEST_F(HttpClientTest, CancelStopsAnIdleStreamAtOnce) {
  auto server = startServer("");
  // Only the cancel's wake-up can end the idle poll before the stream's own timeout: without
  // it, the call would end at 10 s with DeadlineExceeded, every time.
  HttpClient::Options options;
  options.idle_poll = std::chrono::minutes(1);
  HttpClient client(configFor(*server), options);
  Cancellation cancel;
  const pid_t streaming_thread = gettid();
  std::atomic<bool> got_event{false};
  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller([&] {
    server->waitForOpenWatches(1, 10s);
    server->createPod("rec", "web-0", "lab-node");  // one event, then silence
    // Cancel only once the client has read all there was and sleeps in a long poll: past
    // curl's connection timers (happy eyeballs, 200 ms), whose expiry would wake it too.
    EXPECT_TRUE(testsupport::waitUntil(
        [&] { return got_event && sleepsInPoll(streaming_thread, std::chrono::seconds(1)); }));
    cancelled_at = std::chrono::steady_clock::now();
    cancel.cancel();
  });
  std::string received;
  auto response = client.stream(
      "/api/v1/pods?watch=true&resourceVersion=" + std::to_string(server->resourceVersion()),
      [&](std::string_view bytes) {
        received.append(bytes);
        if (received.find('\n') != std::string::npos) got_event = true;
        return true;
      },
      10s, &cancel);
  const auto returned_at = std::chrono::steady_clock::now();
  canceller.join();
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(returned_at - cancelled_at, 200ms);
}

TEST_F(HttpClientTest, AStreamPastItsTimeoutIsGivenUp) {
  auto server = startServer("");
  HttpClient client(configFor(*server));
  Cancellation cancel;
  auto response = client.stream(
      "/api/v1/pods?watch=true&resourceVersion=" + std::to_string(server->resourceVersion()),
      [](std::string_view) { return true; }, 300ms, &cancel);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(HttpClientTest, AnErrorAnswerOfAStreamIsItsBody) {
  auto server = startServer("");
  server->compact();
  server->setWatchExpiry(fakeapi::WatchExpiry::kHttpGone);
  HttpClient client(configFor(*server));
  Cancellation cancel;
  bool called = false;
  auto response = client.stream(
      "/api/v1/pods?watch=true&resourceVersion=1",
      [&](std::string_view) {
        called = true;
        return true;
      },
      10s, &cancel);
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 410);
  EXPECT_FALSE(called);
  EXPECT_EQ(apiError(*response).code(), absl::StatusCode::kOutOfRange);
}

TEST_F(HttpClientTest, NothingListeningIsUnavailable) {
  auto server = startServer("");
  ClusterConfig config = configFor(*server);
  server->stop();
  auto response = HttpClient(config).request("GET", "/api/v1/pods");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
}

// Whatever answers may not be an API server, or may be a broken one: an error all the same.
TEST(ApiErrorTest, AStatusWithFieldsOfOtherTypesIsStillAnError) {
  const std::string odd_status = R"({"kind":"Status","reason":7,"message":["m"],"code":"x"})";
  const absl::Status odd = apiError(HttpResponse{500, odd_status});
  EXPECT_EQ(odd.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(odd.message(), "HTTP 500 " + odd_status);
  EXPECT_EQ(apiError(HttpResponse{404, R"({"kind":5,"reason":"NotFound"})"}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(apiError(HttpResponse{403, "[1,2]"}).code(), absl::StatusCode::kPermissionDenied);
  const absl::Status real = apiError(HttpResponse{410, R"({"kind":"Status","reason":"Expired",)"
                                                       R"("message":"too old","code":410})"});
  EXPECT_EQ(real.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(real.message(), "HTTP 410 Expired: too old");
}

}  // namespace
}  // namespace k8s

#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/fakeapi/fake_api_server.h"
#include "tests/lab/containerd_lab.h"
#include "tests/support/proc.h"
#include "tests/support/wait.h"

// What the end-to-end tests and bench_e2e need around the real capture-controller binary: the
// process itself, the fake API server it talks to over TLS, and ways to look at what it did
// (files, pcap contents, processes in /proc, Events, its HTTP endpoint).
namespace e2e {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// testsupport::waitUntil, polling every 10 ms: these conditions cost an HTTP request or a /proc
// walk each.
inline bool waitUntil(const std::function<bool()>& condition, milliseconds timeout) {
  return testsupport::waitUntil(condition, timeout, milliseconds(10));
}

// The binary the harness runs: this build's, or $CAPTURE_CONTROLLER_UNDER_TEST when set (a
// benchmark of an earlier build, for a before/after comparison).
std::string binaryUnderTest();

// The capture-controller binary as a child process, its stdout and stderr in a log file. It
// dies with the test process (PR_SET_PDEATHSIG), and the destructor SIGKILLs and reaps it.
// With `stdout_path`, stdout goes to that file instead (truncated first) and only stderr to the
// log: for a subcommand whose output is data, as follow's pcap stream.
class ControllerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ControllerProcess>> start(
      const std::vector<std::string>& args, const std::string& log_path,
      const std::string& stdout_path = "");
  ~ControllerProcess();
  ControllerProcess(const ControllerProcess&) = delete;
  ControllerProcess& operator=(const ControllerProcess&) = delete;

  pid_t pid() const { return pid_; }
  // The port of its HTTP endpoint, from the line it logs once it listens; nullopt when it did
  // not log one within `timeout` (it exited, or hangs).
  std::optional<int> waitForHttpPort(milliseconds timeout);
  void signal(int signal);
  // The exit code (128 + signal when killed) once it exited; nullopt if it still runs.
  std::optional<int> waitForExit(milliseconds timeout);
  bool running();
  std::string log() const;

 private:
  ControllerProcess(pid_t pid, int pidfd, std::string log_path)
      : pid_(pid), pidfd_(pidfd), log_path_(std::move(log_path)) {}

  pid_t pid_;
  int pidfd_;
  std::string log_path_;
  std::optional<int> exit_code_;
};

// The fake kube-apiserver over TLS with a bearer token, and a kubeconfig file that reaches it.
class ApiServer {
 public:
  // Everything goes under `dir`. `address`: where it listens, and the IP its certificate names
  // beside 127.0.0.1 (a lab bridge's gateway, for a client in a container).
  static absl::StatusOr<std::unique_ptr<ApiServer>> start(const std::string& dir,
                                                          const std::string& address = "127.0.0.1");
  fakeapi::FakeApiServer& fake() { return *server_; }
  const std::string& kubeconfigPath() const { return kubeconfig_; }
  // What a service account's volume holds: the CA that signed the server's certificate, and the
  // bearer token the server wants.
  const std::string& caCertPath() const { return ca_cert_; }
  const std::string& token() const { return token_; }

  // The Events about one Pod with this reason, as the API server stores them.
  std::vector<nlohmann::json> events(const std::string& pod_uid, const std::string& reason) const;
  std::vector<std::string> messages(const std::string& pod_uid, const std::string& reason) const;

 private:
  std::unique_ptr<fakeapi::FakeApiServer> server_;
  std::string kubeconfig_;
  std::string ca_cert_;
  std::string token_;
};

// Writes a stand-in for tcpdump to `path`: it passes the controller's start-up probe (-C 1M
// --version) and otherwise runs `body` (sh), with $file the -w argument.
void writeTcpdumpStandIn(const std::string& path, const std::string& body);

// Pings every IP in its set from the host every 50 ms, on its own thread, so that captures have
// packets to write.
class Pinger {
 public:
  Pinger();
  ~Pinger();
  void add(const std::string& ip);
  void remove(const std::string& ip);

 private:
  void run();
  std::mutex mu_;
  std::condition_variable stop_changed_;
  bool stop_ = false;
  std::set<std::string> ips_;
  std::thread thread_;
};

// The packets of a pcap file as IPv4 (source, destination) pairs, as far as it is written: a
// record that tcpdump is still writing ends the list, it is not an error.
struct Packet {
  std::string source;
  std::string destination;
  int protocol = 0;  // IPPROTO_ICMP, IPPROTO_UDP, ...
};
// The IPv4 packets of a pcap file (others, such as ARP, are skipped).
absl::StatusOr<std::vector<Packet>> readPcap(const std::string& path);
// Every record of a pcap file, IPv4 or not.
absl::StatusOr<size_t> countPcapRecords(const std::string& path);
// A pcap file or stream as libpcap reads it: its global header's fields and every record, read
// to the end of the file. An error when libpcap cannot open it or stops on a record (a truncated
// or garbled one): a stream that ends cleanly is one global header and whole records.
struct PcapRecord {
  uint32_t ts_sec = 0;
  uint32_t ts_usec = 0;  // libpcap's default precision, whatever the file's
  uint32_t length = 0;   // on the wire
  std::string data;      // caplen bytes
};
struct PcapContents {
  int link_type = 0;  // DLT_EN10MB, ...
  int snaplen = 0;
  std::vector<PcapRecord> records;
};
absl::StatusOr<PcapContents> readPcapRecords(const std::string& path);
// The file exists and holds at least one packet record after the 24-byte pcap header.
bool hasPacketRecord(const std::string& path);

// Live (not zombie) tcpdump processes whose command line writes under `dir`, whoever their
// parent: an orphan that outlived the controller shows up here too.
std::vector<pid_t> tcpdumpsWritingTo(const std::string& dir);
// Live tcpdump processes with `file` (a -w argument, as tcpdump was given it) on their command
// line, in any container.
std::vector<pid_t> tcpdumpsWriting(const std::string& file);
// Live children of `parent` named tcpdump.
std::vector<pid_t> tcpdumpChildrenOf(pid_t parent);
using testsupport::processLives;  // neither gone nor a zombie

// Names of the files in `dir` that start with `prefix`, sorted.
std::set<std::string> filesIn(const std::string& dir, std::string_view prefix = "");

// GET http://127.0.0.1:<port><path>; the status and body, or an error when nothing answered.
struct HttpAnswer {
  int status = 0;
  std::string body;
};
absl::StatusOr<HttpAnswer> httpGet(int port, const std::string& path);
// How many captures the controller's /captures shows Running with a tcpdump pid; 0 when it does
// not answer.
int runningCaptures(int port);

// A process's memory and CPU time from /proc, 0 when it is gone. RSS counts every shared
// library page in every process that maps it; PSS divides shared pages among their mappers, so
// a sum of PSS is what a group of processes really holds.
uint64_t residentBytes(pid_t pid);
// The anonymous part of RSS (heap, stacks): what the process allocated, without the pages of
// its binary and shared libraries that it happens to have touched.
uint64_t anonymousBytes(pid_t pid);
uint64_t proportionalBytes(pid_t pid);
double cpuSeconds(pid_t pid);  // utime + stime

}  // namespace e2e

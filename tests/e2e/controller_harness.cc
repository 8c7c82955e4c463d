#include "tests/e2e/controller_harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/ether.h>
#include <netinet/ip.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "tests/fakeapi/test_certs.h"
#include "tests/lab/icmp.h"
#include "tests/support/files.h"

namespace e2e {

// ---- ControllerProcess ----

std::string binaryUnderTest() {
  const char* other = std::getenv("CAPTURE_CONTROLLER_UNDER_TEST");
  return other != nullptr && *other != '\0' ? other : CAPTURE_CONTROLLER;
}

absl::StatusOr<std::unique_ptr<ControllerProcess>> ControllerProcess::start(
    const std::vector<std::string>& args, const std::string& log_path,
    const std::string& stdout_path) {
  std::vector<std::string> argv = {binaryUnderTest()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> raw_argv;
  for (std::string& arg : argv) raw_argv.push_back(arg.data());
  raw_argv.push_back(nullptr);
  std::string path_env = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  char* env[] = {path_env.data(), nullptr};

  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return absl::InternalError("open " + log_path + ": " + std::strerror(errno));
  int out = log;
  if (!stdout_path.empty()) {
    out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      const std::string error = std::strerror(errno);
      ::close(log);
      return absl::InternalError("open " + stdout_path + ": " + error);
    }
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    if (out != log) ::close(out);
    return absl::InternalError(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Only async-signal-safe calls from here on.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // dup2 drops CLOEXEC on 0
    ::dup2(null, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(log, STDERR_FILENO);
    ::execve(raw_argv[0], raw_argv.data(), env);
    ::_exit(127);
  }
  ::close(log);
  if (out != log) ::close(out);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const std::string error = std::strerror(errno);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return absl::InternalError("pidfd_open: " + error);
  }
  return std::unique_ptr<ControllerProcess>(new ControllerProcess(pid, pidfd, log_path));
}

ControllerProcess::~ControllerProcess() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    waitForExit(milliseconds(10'000));
  }
  ::close(pidfd_);
}

std::optional<int> ControllerProcess::waitForHttpPort(milliseconds timeout) {
  const std::regex listening(R"(HTTP endpoint listening on [^ ]*:([0-9]+))");
  std::optional<int> port;
  waitUntil(
      [&] {
        std::smatch match;
        const std::string text = log();
        if (std::regex_search(text, match, listening)) port = std::stoi(match[1]);
        return port.has_value() || !running();
      },
      timeout);
  return port;
}

void ControllerProcess::signal(int signal) {
  if (!exit_code_) ::kill(pid_, signal);
}

std::optional<int> ControllerProcess::waitForExit(milliseconds timeout) {
  if (exit_code_) return exit_code_;
  pollfd ready{pidfd_, POLLIN, 0};
  if (::poll(&ready, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
  int status = 0;
  if (::waitpid(pid_, &status, 0) != pid_) return std::nullopt;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

bool ControllerProcess::running() { return !waitForExit(milliseconds(0)).has_value(); }

std::string ControllerProcess::log() const { return testsupport::readFile(log_path_); }

// ---- ApiServer ----

absl::StatusOr<std::unique_ptr<ApiServer>> ApiServer::start(const std::string& dir,
                                                            const std::string& address) {
  auto certs = fakeapi::generateTestCertificates(
      dir, address == "127.0.0.1" ? std::vector<std::string>{} : std::vector{address});
  if (!certs.ok()) return certs.status();
  const std::string token = "e2e-token-" + std::to_string(::getpid());
  auto api = std::make_unique<ApiServer>();
  api->ca_cert_ = certs->ca_cert;
  api->token_ = token;
  fakeapi::FakeApiServerOptions options;
  options.address = address;
  options.tls = true;
  options.cert_file = certs->server_cert;
  options.key_file = certs->server_key;
  options.token = token;
  api->server_ = std::make_unique<fakeapi::FakeApiServer>(options);
  if (absl::Status started = api->server_->start(); !started.ok()) return started;
  api->kubeconfig_ = dir + "/kubeconfig";
  std::ofstream(api->kubeconfig_) << "apiVersion: v1\n"
                                  << "kind: Config\n"
                                  << "clusters:\n"
                                  << "- name: fake\n"
                                  << "  cluster:\n"
                                  << "    server: " << api->server_->url() << "\n"
                                  << "    certificate-authority: " << certs->ca_cert << "\n"
                                  << "users:\n"
                                  << "- name: controller\n"
                                  << "  user:\n"
                                  << "    token: " << token << "\n"
                                  << "contexts:\n"
                                  << "- name: fake\n"
                                  << "  context:\n"
                                  << "    cluster: fake\n"
                                  << "    user: controller\n"
                                  << "current-context: fake\n";
  return api;
}

std::vector<nlohmann::json> ApiServer::events(const std::string& pod_uid,
                                              const std::string& reason) const {
  std::vector<nlohmann::json> found;
  for (nlohmann::json& event : server_->events()) {
    if (event.value("/involvedObject/uid"_json_pointer, "") == pod_uid &&
        event.value("reason", "") == reason) {
      found.push_back(std::move(event));
    }
  }
  return found;
}

std::vector<std::string> ApiServer::messages(const std::string& pod_uid,
                                             const std::string& reason) const {
  std::vector<std::string> found;
  for (const nlohmann::json& event : events(pod_uid, reason)) {
    found.push_back(event.value("message", ""));
  }
  return found;
}

void writeTcpdumpStandIn(const std::string& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n"
                      << "file=\n"
                      << "while [ $# -gt 0 ]; do\n"
                      << "  case \"$1\" in\n"
                      << "    --version) echo 'tcpdump version 4.99.5 (stand-in)'; exit 0 ;;\n"
                      << "    -w) file=$2; shift 2 ;;\n"
                      << "    *) shift ;;\n"
                      << "  esac\n"
                      << "done\n"
                      << body << "\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
}

// ---- Pinger ----

Pinger::Pinger() : thread_([this] { run(); }) {}

Pinger::~Pinger() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_changed_.notify_all();
  thread_.join();
}

void Pinger::add(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  ips_.insert(ip);
}

void Pinger::remove(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  ips_.erase(ip);
}

void Pinger::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_changed_.wait_for(lock, milliseconds(50), [this] { return stop_; })) {
    const std::set<std::string> ips = ips_;
    lock.unlock();
    for (const std::string& ip : ips) (void)lab::pingOnce(ip, milliseconds(200));
    lock.lock();
  }
}

// ---- pcap files ----

absl::StatusOr<std::vector<Packet>> readPcap(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pcap = ::pcap_open_offline(path.c_str(), error);
  if (pcap == nullptr) return absl::NotFoundError(path + ": " + error);
  std::vector<Packet> packets;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  const bool ethernet = ::pcap_datalink(pcap) == DLT_EN10MB;
  while (::pcap_next_ex(pcap, &header, &data) == 1) {
    const size_t offset = ethernet ? sizeof(ether_header) : 0;
    if (header->caplen < offset + sizeof(iphdr)) continue;
    if (ethernet &&
        ntohs(reinterpret_cast<const ether_header*>(data)->ether_type) != ETHERTYPE_IP) {
      continue;
    }
    const auto* ip = reinterpret_cast<const iphdr*>(data + offset);
    char source[INET_ADDRSTRLEN], destination[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &ip->saddr, source, sizeof source);
    ::inet_ntop(AF_INET, &ip->daddr, destination, sizeof destination);
    packets.push_back({source, destination, ip->protocol});
  }
  ::pcap_close(pcap);
  return packets;
}

absl::StatusOr<size_t> countPcapRecords(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pcap = ::pcap_open_offline(path.c_str(), error);
  if (pcap == nullptr) return absl::NotFoundError(path + ": " + error);
  size_t records = 0;
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  while (::pcap_next_ex(pcap, &header, &data) == 1) ++records;
  ::pcap_close(pcap);
  return records;
}

absl::StatusOr<PcapContents> readPcapRecords(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE] = {};
  pcap_t* pcap = ::pcap_open_offline(path.c_str(), error);
  if (pcap == nullptr) return absl::NotFoundError(path + ": " + error);
  PcapContents contents;
  contents.link_type = ::pcap_datalink(pcap);
  contents.snaplen = ::pcap_snapshot(pcap);
  pcap_pkthdr* header = nullptr;
  const u_char* data = nullptr;
  int result = 0;
  while ((result = ::pcap_next_ex(pcap, &header, &data)) == 1) {
    contents.records.push_back(PcapRecord{
        .ts_sec = static_cast<uint32_t>(header->ts.tv_sec),
        .ts_usec = static_cast<uint32_t>(header->ts.tv_usec),
        .length = header->len,
        .data = std::string(reinterpret_cast<const char*>(data), header->caplen),
    });
  }
  const std::string why = result == PCAP_ERROR ? ::pcap_geterr(pcap) : "";
  ::pcap_close(pcap);
  if (result != PCAP_ERROR_BREAK) {
    return absl::DataLossError(
        absl::StrCat(path, ": libpcap stopped after ", contents.records.size(), " records: ", why));
  }
  return contents;
}

bool hasPacketRecord(const std::string& path) {
  constexpr uintmax_t kPcapHeaderBytes = 24;
  constexpr uintmax_t kRecordHeaderBytes = 16;
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  return !error && size >= kPcapHeaderBytes + kRecordHeaderBytes;
}

// ---- processes ----

namespace {

struct ProcStat {
  std::string comm;
  char state = '?';
  pid_t ppid = 0;
  uint64_t utime = 0, stime = 0;
};

std::optional<ProcStat> readStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(in, text)) return std::nullopt;
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
  const size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  ProcStat stat;
  stat.comm = text.substr(open + 1, close - open - 1);
  std::istringstream rest(text.substr(close + 2));
  std::string skip;
  rest >> stat.state >> stat.ppid;
  for (int field = 5; field <= 13; ++field) rest >> skip;  // pgrp .. cmajflt
  rest >> stat.utime >> stat.stime;
  return stat;
}

std::vector<pid_t> allPids() {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

// Not a zombie (nor dead), from the stat just read: processLives() would read it again.
bool lives(const ProcStat& stat) { return stat.state != 'Z' && stat.state != 'X'; }

std::vector<std::string> commandLine(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  std::string arg;
  while (std::getline(in, arg, '\0')) args.push_back(arg);
  return args;
}

}  // namespace

namespace {

std::vector<pid_t> tcpdumpsWithAnArgument(const std::function<bool(const std::string&)>& match) {
  std::vector<pid_t> found;
  for (pid_t pid : allPids()) {
    const auto stat = readStat(pid);
    if (!stat || stat->comm != "tcpdump" || !lives(*stat)) continue;
    for (const std::string& arg : commandLine(pid)) {
      if (match(arg)) {
        found.push_back(pid);
        break;
      }
    }
  }
  return found;
}

}  // namespace

std::vector<pid_t> tcpdumpsWritingTo(const std::string& dir) {
  return tcpdumpsWithAnArgument([&](const std::string& arg) { return arg.starts_with(dir + "/"); });
}

std::vector<pid_t> tcpdumpsWriting(const std::string& file) {
  return tcpdumpsWithAnArgument([&](const std::string& arg) { return arg == file; });
}

std::vector<pid_t> tcpdumpChildrenOf(pid_t parent) {
  std::vector<pid_t> found;
  for (pid_t pid : allPids()) {
    const auto stat = readStat(pid);
    if (stat && stat->ppid == parent && stat->comm == "tcpdump" && lives(*stat)) {
      found.push_back(pid);
    }
  }
  return found;
}

namespace {

// A "Name:   1234 kB" line of a /proc file, in bytes.
uint64_t kilobytesLine(const std::string& file, const std::string& name) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(name)) return std::stoull(line.substr(name.size())) * 1024;
  }
  return 0;
}

}  // namespace

uint64_t residentBytes(pid_t pid) {
  return kilobytesLine("/proc/" + std::to_string(pid) + "/status", "VmRSS:");
}

uint64_t anonymousBytes(pid_t pid) {
  return kilobytesLine("/proc/" + std::to_string(pid) + "/status", "RssAnon:");
}

uint64_t proportionalBytes(pid_t pid) {
  return kilobytesLine("/proc/" + std::to_string(pid) + "/smaps_rollup", "Pss:");
}

double cpuSeconds(pid_t pid) {
  const auto stat = readStat(pid);
  if (!stat) return 0;
  return static_cast<double>(stat->utime + stat->stime) / ::sysconf(_SC_CLK_TCK);
}

std::set<std::string> filesIn(const std::string& dir, std::string_view prefix) {
  std::set<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix)) names.insert(std::move(name));
  }
  return names;
}

absl::StatusOr<HttpAnswer> httpGet(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  const httplib::Result result = client.Get(path.c_str());
  if (!result) {
    return absl::UnavailableError(
        absl::StrCat("GET 127.0.0.1:", port, path, ": ", httplib::to_string(result.error())));
  }
  return HttpAnswer{result->status, result->body};
}

int runningCaptures(int port) {
  auto answer = httpGet(port, "/captures");
  if (!answer.ok()) return 0;
  const auto document = nlohmann::json::parse(answer->body, nullptr, false);
  if (document.is_discarded()) return 0;
  int running = 0;
  for (const nlohmann::json& capture : document.value("captures", nlohmann::json::array())) {
    running += capture.value("state", "") == "Running" && capture.value("pid", 0) > 0;
  }
  return running;
}

}  // namespace e2e

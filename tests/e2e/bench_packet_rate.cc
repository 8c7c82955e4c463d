// Kernel drops and CPU at increasing packet rates, so that tcpdump's mode (with or without
// --immediate-mode) is chosen on numbers. The real binary, a real containerd (tests/lab), the
// fake API server over TLS and the real tcpdump. Needs root:
// `sudo build/tests/e2e/bench_packet_rate [--paced_batch=N]`.
//
//   BM_PacketRate/rate:R/captures:C/immediate:I
//       C Pods captured (tcpdump.antrea.io="3"), then UDP from the host to their IPs for
//       kTrafficDuration: R packets/s in all, split evenly over the C Pods, in bursts of
//       --paced_batch (R = 0: as fast as one sender thread goes). I = 1 runs tcpdump with
//       --immediate-mode, through a wrapper script given to the controller as --tcpdump (the
//       controller has no flag for it).
//       Counters: packets sent, delivered to the Pods' eth0 and received/captured/dropped by
//       tcpdump (from the CaptureStopped Events), the kernel's backlog drops, tcpdump's write
//       calls, and the CPU of the controller, of its tcpdumps, of the sender and of the whole
//       machine, as % of one core per second of traffic.
//   BM_PacketRate/rate:0/captures:0/immediate:0  no capture: what a veth pair carries.
//
// A plain-text table of every point is printed at the end. Every point starts its own
// controller, so that each capture's CaptureStopped Event is its own.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

#include "cri/sandbox_status.h"
#include "tests/e2e/controller_harness.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace e2e {
namespace {

using namespace std::chrono_literals;

constexpr char kNode[] = "bench-node";
constexpr char kAnnotation[] = "tcpdump.antrea.io";
constexpr int kMaxCaptures = 10;
// Long enough for several of libpcap's 1 s ring timeouts, short enough that the whole run (13
// points, about 8 s each) stays under two minutes.
constexpr auto kTrafficDuration = 4s;
// A small datagram (74-byte frames): the packet rate, not the bytes, is what costs tcpdump.
constexpr size_t kPayloadBytes = 32;
constexpr uint16_t kDestinationPort = 9;  // discard: nothing listens in the pause sandbox

// Set by SIGINT or SIGTERM: the sender and the waits stop, the remaining points are skipped and
// main() still tears the lab down (its sandboxes, veths and containerd).
std::atomic<bool> interrupted{false};

size_t paced_batch = 8;  // --paced_batch=N: packets per sendmmsg when paced

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ---- what the kernel counts ----

// Busy CPU time of the whole machine (every CPU) from /proc/stat's first line, in clock ticks.
struct MachineTicks {
  uint64_t busy = 0;
};
MachineTicks machineTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  MachineTicks ticks;
  // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
  for (int field = 0; field < 8; ++field) {
    uint64_t value = 0;
    in >> value;
    if (field != 3 && field != 4) ticks.busy += value;
  }
  return ticks;
}

// Packets dropped because a CPU's input backlog (netdev_max_backlog) was full: the second
// column of /proc/net/softnet_stat, in hex, summed over the CPUs. This is where a veth that
// cannot keep up drops, before any tcpdump sees the packet.
uint64_t backlogDrops() {
  std::ifstream in("/proc/net/softnet_stat");
  std::string line;
  uint64_t drops = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string processed, dropped;
    fields >> processed >> dropped;
    if (!dropped.empty()) drops += std::stoull(dropped, nullptr, 16);
  }
  return drops;
}

// rx_packets of eth0 in the network namespace of `pid` (the Pod's side of its veth).
uint64_t podRxPackets(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/net/dev");
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != "eth0") continue;
    std::istringstream fields(line.substr(colon + 1));
    uint64_t rx_bytes = 0, rx_packets = 0;
    fields >> rx_bytes >> rx_packets;
    return rx_packets;
  }
  return 0;
}

double threadCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  const auto toSeconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return toSeconds(usage.ru_utime) + toSeconds(usage.ru_stime);
}

// ---- the sender ----

struct Traffic {
  uint64_t sent = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // the sender thread, with the softirq work done in its context
};

// UDP datagrams from the host to `ips` for `duration`, round robin: `rate` packets/s in all,
// sent in batches with sendmmsg on an absolute schedule, or as fast as one thread goes when
// `rate` is 0. The socket is not connected, so the Pods' ICMP port unreachable answers do not
// fail the next send.
absl::StatusOr<Traffic> sendUdp(const std::vector<std::string>& ips, double rate,
                                Clock::duration duration) {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(std::string("socket: ") + std::strerror(errno));
  const int send_buffer = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);

  // Paced, each batch is a burst of back-to-back packets, which a ring of few slots (tcpdump's
  // with --immediate-mode) feels: --paced_batch sets it (8 by default, 0.8 ms of packets at
  // 10k/s). At full speed, batches only save system calls.
  const size_t batch = rate > 0 ? paced_batch : 64;
  std::vector<sockaddr_in> destinations(ips.size());
  for (size_t i = 0; i < ips.size(); ++i) {
    destinations[i].sin_family = AF_INET;
    destinations[i].sin_port = htons(kDestinationPort);
    ::inet_pton(AF_INET, ips[i].c_str(), &destinations[i].sin_addr);
  }
  char payload[kPayloadBytes] = {};
  iovec data{payload, sizeof payload};
  std::vector<mmsghdr> messages(batch);
  uint64_t next_destination = 0;

  Traffic traffic;
  const double cpu_before = threadCpuSeconds();
  const auto start = Clock::now();
  const auto end = start + duration;
  timespec next{};
  ::clock_gettime(CLOCK_MONOTONIC, &next);
  const auto advance = [&](double by_seconds) {
    const int64_t ns = next.tv_nsec + static_cast<int64_t>(by_seconds * 1e9);
    next.tv_sec += ns / 1'000'000'000;
    next.tv_nsec = ns % 1'000'000'000;
  };
  while (Clock::now() < end && !interrupted) {
    for (mmsghdr& message : messages) {
      message = {};
      message.msg_hdr.msg_name = &destinations[next_destination++ % destinations.size()];
      message.msg_hdr.msg_namelen = sizeof(sockaddr_in);
      message.msg_hdr.msg_iov = &data;
      message.msg_hdr.msg_iovlen = 1;
    }
    const int sent = ::sendmmsg(fd, messages.data(), static_cast<unsigned>(batch), 0);
    if (sent < 0 && errno != ENOBUFS && errno != EINTR) {
      const std::string error = std::strerror(errno);
      ::close(fd);
      return absl::InternalError("sendmmsg: " + error);
    }
    if (sent > 0) traffic.sent += static_cast<uint64_t>(sent);
    if (rate <= 0) continue;
    advance(batch / rate);
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const double behind = (now.tv_sec - next.tv_sec) + (now.tv_nsec - next.tv_nsec) / 1e9;
    // Fallen far behind (the machine is saturated): start the schedule again from now rather
    // than send the backlog in one burst; the rate achieved tells.
    if (behind > 0.05) next = now;
    ::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, nullptr);
  }
  traffic.seconds = seconds(Clock::now() - start);
  traffic.cpu_seconds = threadCpuSeconds() - cpu_before;
  ::close(fd);
  return traffic;
}

// ---- tcpdump's counts, from the CaptureStopped Event ----

struct TcpdumpCounts {
  uint64_t captured = 0, received = 0, dropped = 0;
};
std::optional<TcpdumpCounts> countsIn(const std::string& message) {
  static const std::regex counts(
      R"(([0-9]+) packets captured, ([0-9]+) received by filter, ([0-9]+) dropped by kernel)");
  std::smatch match;
  if (!std::regex_search(message, match, counts)) return std::nullopt;
  return TcpdumpCounts{std::stoull(match[1]), std::stoull(match[2]), std::stoull(match[3])};
}

// ---- the fixture ----

struct Pod {
  std::string name, uid, ip;
  pid_t sandbox_pid = 0;  // the pause process: its /proc/<pid>/net is the Pod's netns
};

// One row of the final table.
struct Point {
  double rate = 0;  // offered in all; 0: as fast as the sender goes
  int captures = 0;
  bool immediate = false;
  double sent_pps = 0, delivered_pps = 0;
  TcpdumpCounts tcpdump;
  uint64_t backlog_drops = 0;
  uint64_t tcpdump_writes = 0;     // write(2) calls of the tcpdumps over the traffic and the drain
  double tcpdump_cpu_seconds = 0;  // the same span
  // % of one core: the controller's and the tcpdumps' CPU over the traffic and the drain after
  // it, the sender's and the machine's (every CPU) over the traffic, and the machine's in the
  // half second before the traffic.
  double controller_cpu = 0, tcpdump_cpu = 0, sender_cpu = 0, machine_busy = 0;
  double background_busy = 0;
};
std::vector<Point> points;

struct Fixture {
  std::unique_ptr<lab::ContainerdLab> lab;
  std::string dir;
  std::unique_ptr<ApiServer> api;
  std::vector<Pod> pods;
  std::string immediate_wrapper;
  std::string tcpdump_version;
  int runs = 0;

  absl::Status start() {
    auto started = lab::ContainerdLab::start();
    if (!started.ok()) return started.status();
    lab = std::move(*started);
    dir = testsupport::makeTempDir("bench-packet-rate");
    std::filesystem::create_directories(dir + "/api");
    auto server = ApiServer::start(dir + "/api");
    if (!server.ok()) return server.status();
    api = std::move(*server);
    for (int i = 0; i < kMaxCaptures; ++i) {
      Pod pod;
      pod.name = "rate-" + std::to_string(i);
      pod.uid = api->fake().createPod("default", pod.name, kNode);
      auto sandbox = lab->runPodSandbox(lab::PodSpec{pod.name, "default", pod.uid});
      if (!sandbox.ok()) return sandbox.status();
      pod.ip = sandbox->ip;
      auto status = lab->client().podSandboxStatus(sandbox->id, /*verbose=*/true);
      if (!status.ok()) return status.status();
      auto info = cri::sandboxInfoFromStatus(*status);
      if (!info.ok()) return info.status();
      pod.sandbox_pid = static_cast<pid_t>(info->pid);
      pods.push_back(pod);
    }
    // The controller probes its --tcpdump with `-C 1M --version`, then `--version`: both reach
    // tcpdump with --immediate-mode in front, which changes neither answer, so the wrapper is
    // given the same -C as tcpdump itself. The pid stays tcpdump's (exec), and so does its
    // name in /proc, which is how its CPU is found.
    immediate_wrapper = dir + "/tcpdump-immediate";
    std::ofstream(immediate_wrapper) << "#!/bin/sh\n"
                                     << "exec /usr/bin/tcpdump --immediate-mode \"$@\"\n";
    std::filesystem::permissions(immediate_wrapper, std::filesystem::perms::owner_all);
    std::string line;
    FILE* version = ::popen("/usr/bin/tcpdump --version 2>&1", "r");
    if (version != nullptr) {
      char buffer[256];
      while (std::fgets(buffer, sizeof buffer, version) != nullptr) line += buffer;
      ::pclose(version);
    }
    tcpdump_version = line.substr(0, line.find('\n'));
    return absl::OkStatus();
  }
  ~Fixture() {
    lab.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }

  struct Controller {
    std::unique_ptr<ControllerProcess> process;
    std::string capture_dir;
  };
  absl::StatusOr<Controller> startController(bool immediate) {
    const std::string run = "run-" + std::to_string(++runs);
    Controller controller;
    controller.capture_dir = dir + "/" + run;
    std::filesystem::create_directories(controller.capture_dir);
    std::vector<std::string> args = {
        "--node-name=" + std::string(kNode), "--cri-endpoint=" + lab->endpoint(),
        "--kubeconfig=" + api->kubeconfigPath(), "--capture-dir=" + controller.capture_dir,
        "--http-address=127.0.0.1:0"};
    if (immediate) args.push_back("--tcpdump=" + immediate_wrapper);
    auto process = ControllerProcess::start(args, dir + "/" + run + ".log");
    if (!process.ok()) return process.status();
    controller.process = std::move(*process);
    if (!controller.process->waitForHttpPort(30s)) {
      return absl::UnavailableError("the controller did not start:\n" + controller.process->log());
    }
    return controller;
  }
};

Fixture* fixture = nullptr;

// Removes the annotation from the Pods it still holds when it goes, so that a point that fails
// half-way leaves no capture wanted for the next point's controller.
class Annotations {
 public:
  ~Annotations() { removeAll(); }
  void set(const std::string& pod) {
    fixture->api->fake().setAnnotation("default", pod, kAnnotation, "3");
    pods_.push_back(pod);
  }
  void removeAll() {
    for (const std::string& pod : pods_) {
      fixture->api->fake().removeAnnotation("default", pod, kAnnotation);
    }
    pods_.clear();
  }

 private:
  std::vector<std::string> pods_;
};

// The command line of `pid`, its arguments joined with spaces.
std::string commandLineOf(pid_t pid) {
  std::string text = testsupport::readFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::replace(text.begin(), text.end(), '\0', ' ');
  return text;
}

// Write system calls made by `pids` (syscw of /proc/<pid>/io): with -U, tcpdump flushes its
// file after every packet, one write(2) each.
uint64_t writeCallsOf(const std::vector<pid_t>& pids) {
  uint64_t total = 0;
  for (pid_t pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/io");
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("syscw:")) total += std::stoull(line.substr(6));
    }
  }
  return total;
}

double cpuOf(const std::vector<pid_t>& pids) {
  double total = 0;
  for (pid_t pid : pids) total += cpuSeconds(pid);
  return total;
}

absl::StatusOr<Point> measure(double rate, int captures, bool immediate) {
  Point point;
  point.rate = rate;
  point.captures = captures;
  point.immediate = immediate;
  std::vector<std::string> ips;
  std::vector<Pod> targets;
  // The baseline, with nothing captured, sends to one Pod: what one veth pair carries.
  const int pods = captures == 0 ? 1 : captures;
  for (int i = 0; i < pods; ++i) {
    targets.push_back(fixture->pods[i]);
    ips.push_back(fixture->pods[i].ip);
  }

  std::optional<Fixture::Controller> controller;
  std::vector<pid_t> tcpdumps;
  std::map<std::string, size_t> stopped_before;
  Annotations annotations;  // after the controller: removed while it still runs
  if (captures > 0) {
    auto started = fixture->startController(immediate);
    if (!started.ok()) return started.status();
    controller = std::move(*started);
    for (const Pod& pod : targets) {
      stopped_before[pod.uid] = fixture->api->messages(pod.uid, "CaptureStopped").size();
      annotations.set(pod.name);
    }
    // Running, and past opening its capture: the pcap header of each first file is on disk.
    const bool listening = waitUntil(
        [&] {
          if (interrupted) return true;
          for (const Pod& pod : targets) {
            std::error_code error;
            const auto size = std::filesystem::file_size(
                controller->capture_dir + "/capture-" + pod.name + ".pcap0", error);
            if (error || size < 24) return false;
          }
          return tcpdumpChildrenOf(controller->process->pid()).size() ==
                 static_cast<size_t>(captures);
        },
        60s);
    if (!listening || interrupted) {
      return absl::DeadlineExceededError("the captures did not start within 60 s:\n" +
                                         controller->process->log());
    }
    tcpdumps = tcpdumpChildrenOf(controller->process->pid());
    for (pid_t pid : tcpdumps) {
      const bool has_flag = commandLineOf(pid).find("--immediate-mode") != std::string::npos;
      if (has_flag != immediate) {
        return absl::InternalError("tcpdump runs as `" + commandLineOf(pid) + "`");
      }
    }
  }
  std::this_thread::sleep_for(300ms);  // past the starts' own work
  // What the machine does without this point's traffic (other work on a shared machine: its
  // CPU is taken from the sender and the tcpdumps).
  const MachineTicks quiet_before = machineTicks();
  const auto quiet_start = Clock::now();
  std::this_thread::sleep_for(500ms);
  const double ticks_per_second = ::sysconf(_SC_CLK_TCK);
  point.background_busy = (machineTicks().busy - quiet_before.busy) / ticks_per_second /
                          seconds(Clock::now() - quiet_start) * 100;

  std::vector<uint64_t> rx_before;
  for (const Pod& pod : targets) rx_before.push_back(podRxPackets(pod.sandbox_pid));
  const uint64_t backlog_before = backlogDrops();
  const MachineTicks machine_before = machineTicks();
  const double controller_before = controller ? cpuSeconds(controller->process->pid()) : 0;
  const double tcpdump_before = cpuOf(tcpdumps);
  const uint64_t writes_before = writeCallsOf(tcpdumps);

  auto traffic = sendUdp(ips, rate, kTrafficDuration);
  if (!traffic.ok()) return traffic.status();
  const MachineTicks machine_after = machineTicks();

  // tcpdump may still be working through its ring, and without --immediate-mode the last,
  // partly filled block is handed over only at libpcap's 1 s timeout: wait past that, and until
  // the tcpdumps' CPU time stops moving, so that the CPU counted is all the traffic's.
  if (!tcpdumps.empty()) {
    std::this_thread::sleep_for(1200ms);
    double last = cpuOf(tcpdumps);
    waitUntil(
        [&] {
          std::this_thread::sleep_for(200ms);
          const double now = cpuOf(tcpdumps);
          return std::exchange(last, now) == now || interrupted;
        },
        10s);
  }
  const double tcpdump_after = cpuOf(tcpdumps);
  point.tcpdump_writes = writeCallsOf(tcpdumps) - writes_before;
  const double controller_after = controller ? cpuSeconds(controller->process->pid()) : 0;
  point.backlog_drops = backlogDrops() - backlog_before;
  uint64_t delivered = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    delivered += podRxPackets(targets[i].sandbox_pid) - rx_before[i];
  }
  for (pid_t pid : tcpdumps) {
    if (!processLives(pid)) return absl::InternalError("a tcpdump exited during the traffic");
  }

  const double traffic_seconds = traffic->seconds;
  point.sent_pps = traffic->sent / traffic_seconds;
  point.delivered_pps = delivered / traffic_seconds;
  point.sender_cpu = traffic->cpu_seconds / traffic_seconds * 100;
  point.controller_cpu = (controller_after - controller_before) / traffic_seconds * 100;
  point.tcpdump_cpu_seconds = tcpdump_after - tcpdump_before;
  point.tcpdump_cpu = point.tcpdump_cpu_seconds / traffic_seconds * 100;
  point.machine_busy =
      (machine_after.busy - machine_before.busy) / ticks_per_second / traffic_seconds * 100;

  if (controller) {
    annotations.removeAll();
    for (const Pod& pod : targets) {
      std::vector<std::string> stopped;
      const bool reported = waitUntil(
          [&] {
            stopped = fixture->api->messages(pod.uid, "CaptureStopped");
            return stopped.size() > stopped_before[pod.uid] || interrupted;
          },
          30s);
      if (!reported || interrupted) {
        return absl::DeadlineExceededError("no CaptureStopped Event for " + pod.name);
      }
      const auto counts = countsIn(stopped.back());
      if (!counts) return absl::InternalError("no counts in \"" + stopped.back() + "\"");
      point.tcpdump.captured += counts->captured;
      point.tcpdump.received += counts->received;
      point.tcpdump.dropped += counts->dropped;
    }
    controller->process->signal(SIGTERM);
    controller->process->waitForExit(60s);
  }
  return point;
}

void BM_PacketRate(benchmark::State& state) {
  const double rate = static_cast<double>(state.range(0));
  const int captures = static_cast<int>(state.range(1));
  const bool immediate = state.range(2) == 1;
  for (auto _ : state) {
    if (interrupted) {
      state.SkipWithError("interrupted");
      return;
    }
    auto point = measure(rate, captures, immediate);
    if (!point.ok()) {
      state.SkipWithError(std::string(point.status().message()).c_str());
      return;
    }
    state.SetIterationTime(seconds(kTrafficDuration));
    state.counters["sent_pps"] = point->sent_pps;
    state.counters["delivered_pps"] = point->delivered_pps;
    state.counters["backlog_drops"] = point->backlog_drops;
    state.counters["received"] = point->tcpdump.received;
    state.counters["captured"] = point->tcpdump.captured;
    state.counters["dropped"] = point->tcpdump.dropped;
    state.counters["tcpdump_writes"] = point->tcpdump_writes;
    state.counters["tcpdump_us_per_captured"] =
        point->tcpdump.captured ? point->tcpdump_cpu_seconds / point->tcpdump.captured * 1e6 : 0;
    state.counters["dropped_pct"] =
        point->tcpdump.received ? 100.0 * point->tcpdump.dropped / point->tcpdump.received : 0;
    state.counters["controller_cpu_pct"] = point->controller_cpu;
    state.counters["tcpdump_cpu_pct"] = point->tcpdump_cpu;
    state.counters["sender_cpu_pct"] = point->sender_cpu;
    state.counters["machine_busy_pct"] = point->machine_busy;
    state.counters["background_busy_pct"] = point->background_busy;
    points.push_back(*point);
  }
}

// The points in the order of the table: the baseline, then 1 and 10 captures at 10k packets/s,
// 50k packets/s and the most the sender gets through, each without and then with
// --immediate-mode: back to back, so that other work on the machine weighs on both alike.
void packetRatePoints(benchmark::internal::Benchmark* benchmark) {
  benchmark->Args({0, 0, 0});
  for (int captures : {1, kMaxCaptures}) {
    for (int rate : {10'000, 50'000, 0}) {
      for (int immediate : {0, 1}) benchmark->Args({rate, captures, immediate});
    }
  }
}
BENCHMARK(BM_PacketRate)
    ->ArgNames({"rate", "captures", "immediate"})
    ->Apply(packetRatePoints)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kSecond);

void printTable() {
  std::printf(
      "\nUDP, %zu-byte payloads, from the host to the captured Pods for %.0f s per point, paced in "
      "bursts of %zu; the rate is the total, split evenly over the Pods.\n"
      "received, dropped: tcpdump's counts (the kernel's, libpcap's ps_recv and ps_drop), summed "
      "over the captures; backlog: drops of the CPUs' input backlog, before any tcpdump;\n"
      "wr/pkt: tcpdump's write(2) calls per packet captured; us/pkt: tcpdump's CPU time per "
      "packet captured; CPU in %% of one core per second of "
      "traffic (the machine has %ld): the controller's and the tcpdumps' (in all, and per "
      "capture)\nwith the drain after the traffic, the sender's (with the softirq work done in "
      "its context), the machine's during the traffic, and the machine's in the 0.5 s before it "
      "(other work).\n",
      kPayloadBytes, seconds(kTrafficDuration), paced_batch, ::sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-5s %8s %-9s %8s %9s %9s %9s %7s %7s %6s %6s %7s %8s %8s %7s %7s %7s\n", "rate",
              "captures", "mode", "sent/s", "deliv/s", "received", "dropped", "drop%", "backlog",
              "wr/pkt", "us/pkt", "ctrl", "tcpdump", "per cap", "sender", "machine", "before");
  for (const Point& p : points) {
    const std::string rate =
        p.rate > 0 ? std::to_string(static_cast<int>(p.rate / 1000)) + "k" : std::string("max");
    const char* mode = p.captures == 0 ? "-" : p.immediate ? "immediate" : "default";
    const double drop_pct = p.tcpdump.received ? 100.0 * p.tcpdump.dropped / p.tcpdump.received : 0;
    const double writes_per_packet =
        p.tcpdump.captured ? static_cast<double>(p.tcpdump_writes) / p.tcpdump.captured : 0;
    const double us_per_packet =
        p.tcpdump.captured ? p.tcpdump_cpu_seconds / p.tcpdump.captured * 1e6 : 0;
    std::printf("%-5s %8d %-9s %8.0f %9.0f %9" PRIu64 " %9" PRIu64 " %6.2f%% %7" PRIu64
                " %6.2f %6.2f %6.1f%% %7.1f%% %7.1f%% %6.0f%% %6.0f%% %6.0f%%\n",
                rate.c_str(), p.captures, mode, p.sent_pps, p.delivered_pps, p.tcpdump.received,
                p.tcpdump.dropped, drop_pct, p.backlog_drops, writes_per_packet, us_per_packet,
                p.controller_cpu, p.tcpdump_cpu, p.captures ? p.tcpdump_cpu / p.captures : 0.0,
                p.sender_cpu, p.machine_busy, p.background_busy);
  }
  std::string kernel = testsupport::readFile("/proc/sys/kernel/osrelease");
  if (!kernel.empty() && kernel.back() == '\n') kernel.pop_back();
  std::printf("(%s; kernel %s)\n", fixture->tcpdump_version.c_str(), kernel.c_str());
}

}  // namespace
}  // namespace e2e

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  // What Google Benchmark left of the command line: this benchmark's own flag.
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--paced_batch=")) {
      e2e::paced_batch = std::max(1, std::atoi(argv[i] + std::strlen("--paced_batch=")));
    } else {
      std::cerr << "bench_packet_rate: unknown argument " << arg << "\n";
      return 1;
    }
  }
  if (::geteuid() != 0) {
    std::cerr << "bench_packet_rate needs root (containerd, network namespaces, tcpdump)\n";
    return 1;
  }
  struct sigaction stop {};
  stop.sa_handler = [](int) { e2e::interrupted = true; };
  ::sigaction(SIGINT, &stop, nullptr);
  ::sigaction(SIGTERM, &stop, nullptr);
  std::cerr << "bench_packet_rate: measuring " << e2e::binaryUnderTest() << "\n";
  auto fixture = std::make_unique<e2e::Fixture>();
  if (absl::Status started = fixture->start(); !started.ok()) {
    std::cerr << "bench_packet_rate: " << started << "\n";
    return 1;
  }
  e2e::fixture = fixture.get();
  benchmark::RunSpecifiedBenchmarks();
  e2e::printTable();
  benchmark::Shutdown();
  return 0;
}

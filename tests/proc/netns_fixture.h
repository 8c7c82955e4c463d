#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "proc/spawn.h"

// Real network namespaces for the tests of real edges (root only).
namespace proc::testing {

inline std::string testDataPath(const std::string& name) {
  return absl::StrCat(CAPTURE_TEST_DATA_DIR, "/", name);
}

// Runs a command from the test (not the code under test) and says whether it exited 0.
inline bool run(std::vector<std::string> argv) {
  auto done = runToCompletion(SpawnSpec{std::move(argv), {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}},
                              std::chrono::seconds(20));
  return done.ok() && done->status.exit_code == 0;
}

// A named network namespace (`ip netns add`), unique to this process, with lo up; deleted at
// the end of the test.
class TestNetns {
 public:
  TestNetns() {
    static std::atomic<int> counter{0};
    name_ = absl::StrCat("cct-", ::getpid(), "-", counter++);
    ok_ = run({"/usr/sbin/ip", "netns", "add", name_}) &&
          run({"/usr/sbin/ip", "-n", name_, "link", "set", "lo", "up"});
  }
  ~TestNetns() { run({"/usr/sbin/ip", "netns", "del", name_}); }
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  std::string path() const { return "/var/run/netns/" + name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

// A process (sleep) in a cgroup of its own whose path ends in `leaf`, as containerd places a
// sandbox's pause process in .../pod<uid>/<sandbox id>: in the pids hierarchy of cgroup v1, or
// in the unified one of v2. Killed, reaped and removed with its cgroups at the end of the test.
class ProcessInCgroup {
 public:
  explicit ProcessInCgroup(const std::string& leaf) {
    const std::string root = std::filesystem::exists("/sys/fs/cgroup/cgroup.procs")
                                 ? "/sys/fs/cgroup"
                                 : "/sys/fs/cgroup/pids";
    parent_ = absl::StrCat(root, "/cct-", ::getpid(), "-", counter_++);
    leaf_ = parent_ + "/" + leaf;
    std::error_code ec;
    if (!std::filesystem::create_directories(leaf_, ec)) return;
    auto child = spawnChild(SpawnSpec{{"/bin/sleep", "60"}, {}});
    if (!child.ok()) return;
    child_ = std::move(*child);
    std::ofstream(leaf_ + "/cgroup.procs") << child_.pid << std::flush;
    ok_ = inLeaf();
  }
  ~ProcessInCgroup() {
    if (child_.pidfd.valid()) killAndReap(child_.pidfd.get());
    ::rmdir(leaf_.c_str());
    ::rmdir(parent_.c_str());
  }
  bool ok() const { return ok_; }
  pid_t pid() const { return child_.pid; }

 private:
  bool inLeaf() const {
    std::ifstream procs(leaf_ + "/cgroup.procs");
    for (pid_t pid; procs >> pid;) {
      if (pid == child_.pid) return true;
    }
    return false;
  }

  static inline std::atomic<int> counter_{0};
  std::string parent_, leaf_;
  SpawnedChild child_;
  bool ok_ = false;
};

// Sends a UDP datagram to 127.0.0.1:9 every 10 ms from inside a network namespace, so that a
// tcpdump there has traffic to write. setns() moves only the calling thread.
class LoopbackTraffic {
 public:
  explicit LoopbackTraffic(const std::string& netns_path)
      : thread_([this, netns_path] { send(netns_path); }) {}
  ~LoopbackTraffic() {
    stop_ = true;
    thread_.join();
  }
  int sent() const { return sent_; }

 private:
  void send(const std::string& netns_path) {
    const int ns = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || ::setns(ns, CLONE_NEWNET) != 0) return;
    ::close(ns);
    const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to = {};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (!stop_) {
      const char payload[] = "capture-controller test traffic";
      if (::sendto(sock, payload, sizeof(payload), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof(to)) > 0) {
        ++sent_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::close(sock);
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0};
  std::thread thread_;
};

}  // namespace proc::testing

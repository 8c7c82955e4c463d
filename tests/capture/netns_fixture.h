#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "capture/spawn.h"

// Real network namespaces for the tests of real edges (root only).
namespace capture::testing {

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

}  // namespace capture::testing

// The real edges: NetnsLauncher and the real tcpdump in real network namespaces (root).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "capture/tcpdump.h"
#include "capture/tcpdump_stats.h"
#include "proc/netns_launcher.h"
#include "tests/capture/fakes.h"
#include "tests/proc/netns_fixture.h"
#include "tests/support/e2e_guard.h"

namespace proc {
namespace {

using namespace std::chrono_literals;
using capture::kDefaultTcpdumpPath;
using capture::probeTcpdump;
using capture::TcpdumpCommand;
using capture::tcpdumpErrorLines;
using capture::TcpdumpStatsParser;
using capture::testing::TempDir;
using capture::testing::waitUntil;
using ::testing::HasSubstr;
using testing::LoopbackTraffic;
using testing::TestNetns;

TEST(ProbeTcpdump, MatchesWhatTheInstalledTcpdumpAccepts) {
  ASSERT_TRUE(std::filesystem::exists(kDefaultTcpdumpPath)) << "tcpdump is in packages.txt";
  auto command = probeTcpdump(kDefaultTcpdumpPath);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->path, kDefaultTcpdumpPath);
  const bool takes_units = testing::run({kDefaultTcpdumpPath, "-C", "1M", "--version"});
  EXPECT_EQ(command->file_size, takes_units ? "1M" : "1");
  // Debian 12 (4.99.3) and Ubuntu 24.04 (4.99.4) both want the plain number.
  if (testing::run({"/bin/sh", "-c", "/usr/bin/tcpdump --version | grep -q 'version 4.99.[34]'"})) {
    EXPECT_EQ(command->file_size, "1");
  }
  EXPECT_TRUE(testing::run({kDefaultTcpdumpPath, "-C", command->file_size, "--version"}));
}

TEST(ProbeTcpdump, PassesUnitsToATcpdumpThatTakesThem) {
  auto command = probeTcpdump(testing::testDataPath("fake-tcpdump-with-units"));
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->file_size, "1M");
  EXPECT_THAT(command->argv(3, "/capture-web.pcap"),
              ::testing::ElementsAre(testing::testDataPath("fake-tcpdump-with-units"), "-C", "1M",
                                     "-W", "3", "-w", "/capture-web.pcap", "-Z", "root", "-U"));
}

TEST(ProbeTcpdump, FailsForATcpdumpThatDoesNotRun) {
  auto broken = probeTcpdump(testing::testDataPath("broken-tcpdump"));
  ASSERT_FALSE(broken.ok());
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("libpcap.so"));
  auto missing = probeTcpdump("/nonexistent/tcpdump");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("/nonexistent/tcpdump"));
}

int countPackets(const std::string& path) {
  char error[PCAP_ERRBUF_SIZE];
  pcap_t* pcap = pcap_open_offline(path.c_str(), error);
  if (pcap == nullptr) return -1;
  int packets = 0;
  pcap_pkthdr* header;
  const u_char* data;
  while (pcap_next_ex(pcap, &header, &data) == 1) ++packets;
  pcap_close(pcap);
  return packets;
}

bool zombieFree(pid_t pid) {
  return ::waitpid(pid, nullptr, WNOHANG) == -1 && errno == ECHILD &&
         !std::filesystem::exists("/proc/" + std::to_string(pid));
}

class NetnsLauncherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    E2E_REQUIRE_ROOT();
    ASSERT_TRUE(netns_.ok()) << "ip netns add failed";
    auto tcpdump = probeTcpdump(kDefaultTcpdumpPath);
    ASSERT_TRUE(tcpdump.ok()) << tcpdump.status();
    tcpdump_ = *tcpdump;
    auto launcher = NetnsLauncher::create({});
    ASSERT_TRUE(launcher.ok()) << launcher.status();
    launcher_ = std::move(*launcher);
    launcher_->setExitHandler([this](ProcessExit exit) { exits_.set_value(std::move(exit)); });
  }
  LaunchSpec tcpdumpSpec(int files) const {
    return LaunchSpec{"uid-1", tcpdump_.argv(files, dir_.file("capture-web.pcap")), netns_.path(),
                      0, ""};
  }
  ProcessExit nextExit() {
    auto future = exits_.get_future();
    if (future.wait_for(20s) != std::future_status::ready) {
      ADD_FAILURE() << "no exit reported within 20 s";  // rather than block in get()
      return {};
    }
    return future.get();
  }

  // Before launcher_, so destroyed after it: an exit the launcher's thread reports during
  // teardown still finds the promise.
  std::promise<ProcessExit> exits_;
  TestNetns netns_;
  TempDir dir_;
  TcpdumpCommand tcpdump_;
  std::unique_ptr<NetnsLauncher> launcher_;
};

TEST_F(NetnsLauncherTest, TcpdumpCapturesTheNamespacesTrafficAndFlushesOnStop) {
  auto launched = launcher_->start(tcpdumpSpec(2));
  ASSERT_TRUE(launched.ok()) << launched.status();
  EXPECT_EQ(launched->netns_path, netns_.path());
  {
    LoopbackTraffic traffic(netns_.path());
    // The pcap header alone is 24 bytes: wait for packets, written out as they come (-U).
    ASSERT_TRUE(waitUntil(
        [&] {
          struct stat st;
          return ::stat(dir_.file("capture-web.pcap0").c_str(), &st) == 0 && st.st_size > 24;
        },
        20s))
        << "no packets reached capture-web.pcap0";
  }
  ASSERT_TRUE(launcher_->signal(launched->id, SIGTERM).ok());
  const ProcessExit stopped = nextExit();  // the stop's end comes as any exit does
  EXPECT_EQ(stopped.id, launched->id);
  EXPECT_EQ(stopped.status, (ExitStatus{0, 0}))
      << "tcpdump ends cleanly on SIGTERM; stderr: " << stopped.stderr_tail;
  EXPECT_THAT(stopped.stderr_tail, HasSubstr("packets captured"));
  EXPECT_EQ(tcpdumpErrorLines(stopped.stderr_tail), "")
      << "a clean stop is only tcpdump's banner and statistics: " << stopped.stderr_tail;
  EXPECT_GT(countPackets(dir_.file("capture-web.pcap0")), 0);
  EXPECT_TRUE(zombieFree(launched->pid));
  EXPECT_EQ(launcher_->running(), 0u);
  EXPECT_EQ(dir_.names(), (std::set<std::string>{"capture-web.pcap0"}));
}

TEST_F(NetnsLauncherTest, StderrReachesTheOutputHandlerAsItComesAndBeforeTheExit) {
  std::mutex mu;
  std::string output;
  bool exited = false;
  bool output_after_exit = false;
  launcher_->setOutputHandler([&](proc::ProcessOutput chunk) {
    std::lock_guard<std::mutex> lock(mu);
    output_after_exit |= exited;
    output += chunk.text;
  });
  launcher_->setExitHandler([&](ProcessExit exit) {
    {
      std::lock_guard<std::mutex> lock(mu);
      exited = true;
    }
    exits_.set_value(std::move(exit));
  });
  const auto seen = [&](std::string_view text) {
    std::lock_guard<std::mutex> lock(mu);
    return output.find(text) != std::string::npos;
  };
  auto launched = launcher_->start(tcpdumpSpec(2));
  ASSERT_TRUE(launched.ok()) << launched.status();
  ASSERT_TRUE(waitUntil([&] { return seen("listening on"); }, 20s)) << "no banner";
  {
    LoopbackTraffic traffic(netns_.path());
    // Once it listens, SIGUSR1 makes tcpdump print its counts and go on.
    ASSERT_TRUE(launcher_->signal(launched->id, SIGUSR1).ok());
    ASSERT_TRUE(waitUntil([&] { return seen("packets dropped by kernel"); }, 20s));
  }
  EXPECT_EQ(launcher_->running(), 1u) << "SIGUSR1 did not end tcpdump";
  ASSERT_TRUE(launcher_->signal(launched->id, SIGTERM).ok());
  const ProcessExit stopped = nextExit();
  EXPECT_EQ(stopped.status, (ExitStatus{0, 0})) << stopped.stderr_tail;
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_FALSE(output_after_exit);
  TcpdumpStatsParser stats;
  stats.feed(output);
  ASSERT_TRUE(stats.counts().has_value()) << output;
  EXPECT_THAT(output, HasSubstr(stopped.stderr_tail)) << "the tail is the output's end";
}

TEST_F(NetnsLauncherTest, OneFileCaptureHasNoRotationSuffix) {
  auto launched = launcher_->start(tcpdumpSpec(1));
  ASSERT_TRUE(launched.ok()) << launched.status();
  ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(dir_.file("capture-web.pcap")); }));
  ASSERT_TRUE(launcher_->signal(launched->id, SIGTERM).ok());
  EXPECT_EQ(nextExit().status, (ExitStatus{0, 0}));
  EXPECT_EQ(dir_.names(), (std::set<std::string>{"capture-web.pcap"}));
}

TEST_F(NetnsLauncherTest, ElevenFilesArePaddedToTwoDigits) {
  auto launched = launcher_->start(tcpdumpSpec(11));
  ASSERT_TRUE(launched.ok()) << launched.status();
  ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(dir_.file("capture-web.pcap00")); }));
  ASSERT_TRUE(launcher_->signal(launched->id, SIGTERM).ok());
  EXPECT_EQ(nextExit().status, (ExitStatus{0, 0}));
}

TEST_F(NetnsLauncherTest, ATcpdumpThatFailsIsReportedWithItsStderr) {
  LaunchSpec spec = tcpdumpSpec(2);
  spec.argv.insert(spec.argv.end(), {"-i", "nosuchif0"});
  auto launched = launcher_->start(spec);
  ASSERT_TRUE(launched.ok()) << launched.status();
  const ProcessExit exit = nextExit();
  EXPECT_EQ(exit.id, launched->id);
  EXPECT_EQ(exit.owner, "uid-1");
  EXPECT_NE(exit.status.exit_code, 0);
  EXPECT_THAT(exit.stderr_tail, HasSubstr("nosuchif0"));
  EXPECT_TRUE(zombieFree(launched->pid));
  EXPECT_EQ(launcher_->signal(launched->id, SIGTERM).code(), absl::StatusCode::kNotFound);
}

TEST_F(NetnsLauncherTest, AnInterfaceNameThatIsNotUtf8ComesBackAsPrintableText) {
  LaunchSpec spec = tcpdumpSpec(2);
  spec.argv.insert(spec.argv.end(), {"-i", "\xff\xfe"});
  auto launched = launcher_->start(spec);
  ASSERT_TRUE(launched.ok()) << launched.status();
  const ProcessExit exit = nextExit();
  EXPECT_NE(exit.status.exit_code, 0);
  EXPECT_THAT(exit.stderr_tail, HasSubstr("\\xff\\xfe"));
  EXPECT_NO_THROW(nlohmann::json(exit.stderr_tail).dump());
}

TEST_F(NetnsLauncherTest, TcpdumpDiesWithTheThreadThatStartedIt) {
  // PR_SET_PDEATHSIG must survive exec and tcpdump's -Z root: if the controller dies, no
  // tcpdump is left behind. It follows the forking thread, which this test ends.
  absl::StatusOr<LaunchedProcess> launched = absl::UnknownError("not run");
  bool opened_its_file = false;
  std::thread([&] {
    launched = launcher_->start(tcpdumpSpec(2));
    // tcpdump opens its file after switching to -Z's user: only past that point does the
    // thread's end test what it should.
    opened_its_file = launched.ok() && waitUntil([&] {
                        return std::filesystem::exists(dir_.file("capture-web.pcap0"));
                      });
  }).join();
  ASSERT_TRUE(launched.ok()) << launched.status();
  ASSERT_TRUE(opened_its_file) << "tcpdump never opened capture-web.pcap0";
  const ProcessExit exit = nextExit();
  EXPECT_EQ(exit.id, launched->id);
  EXPECT_EQ(exit.status.signal, SIGKILL);
  EXPECT_TRUE(zombieFree(launched->pid));
}

TEST_F(NetnsLauncherTest, SigkillEndsWhatIgnoresSigterm) {
  const std::string ready = dir_.file("ready");
  auto launched = launcher_->start(
      LaunchSpec{"uid-1",
                 {"/bin/sh", "-c", "trap '' TERM; : > " + ready + "; exec sleep 30"},
                 netns_.path(),
                 0,
                 ""});
  ASSERT_TRUE(launched.ok()) << launched.status();
  ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(ready); }));  // SIGTERM is ignored
  ASSERT_TRUE(launcher_->signal(launched->id, SIGTERM).ok());
  auto future = exits_.get_future();
  EXPECT_EQ(future.wait_for(200ms), std::future_status::timeout) << "it ignores SIGTERM";
  ASSERT_TRUE(launcher_->signal(launched->id, SIGKILL).ok());
  ASSERT_EQ(future.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(future.get().status.signal, SIGKILL);
  EXPECT_TRUE(zombieFree(launched->pid));
}

TEST_F(NetnsLauncherTest, RunsInTheSandboxsNamespaceNotTheHosts) {
  // /proc/net/dev lists the interfaces of the reader's network namespace.
  const std::string script =
      "readlink /proc/self/ns/net >&2; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' >&2";
  auto launched =
      launcher_->start(LaunchSpec{"uid-1", {"/bin/sh", "-c", script}, netns_.path(), 0, ""});
  ASSERT_TRUE(launched.ok()) << launched.status();
  const ProcessExit exit = nextExit();
  struct stat sandbox_ns;
  ASSERT_EQ(::stat(netns_.path().c_str(), &sandbox_ns), 0);
  // The namespace the test made, which has nothing but lo.
  EXPECT_EQ(exit.stderr_tail, "net:[" + std::to_string(sandbox_ns.st_ino) + "]\nlo");
}

TEST_F(NetnsLauncherTest, RefusesAPathThatIsNotANetworkNamespace) {
  dir_.touch("cni-placeholder", "");
  auto launched =
      launcher_->start(LaunchSpec{"uid-1", tcpdump_.argv(2, dir_.file("capture-web.pcap")),
                                  dir_.file("cni-placeholder"), 0, ""});
  ASSERT_FALSE(launched.ok());
  EXPECT_THAT(launched.status().message(), HasSubstr("mountPropagation"));
  EXPECT_TRUE(dir_.names().count("capture-web.pcap0") == 0);
}

}  // namespace
}  // namespace proc

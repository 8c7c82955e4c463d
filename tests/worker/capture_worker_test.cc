#include "worker/capture_worker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "base/work_queue.h"
#include "proc/netns_launcher.h"
#include "tests/capture/fakes.h"
#include "tests/proc/netns_fixture.h"
#include "tests/support/e2e_guard.h"

namespace worker {
namespace {

using namespace std::chrono_literals;
using capture::CaptureOptions;
using capture::CaptureState;
using capture::kDefaultTcpdumpPath;
using capture::kReasonFailed;
using capture::kReasonRestarted;
using capture::kReasonStarted;
using capture::kReasonStopped;
using capture::probeTcpdump;
using capture::testing::makePod;
using capture::testing::makeSandbox;
using capture::testing::waitUntil;
using proc::ExitStatus;
using proc::NetnsLauncher;
using proc::ProcessId;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class CaptureWorkerTest : public ::testing::Test {
 protected:
  CaptureOptions options() const {
    CaptureOptions o;
    o.node_name = "node-1";
    o.capture_dir = dir_.path();
    o.resync_period = 50ms;
    o.sandbox_retry = 20ms;
    o.backoff_initial = 10ms;
    o.backoff_max = 40ms;
    return o;
  }
  std::unique_ptr<CaptureWorker> makeWorker() {
    return std::make_unique<CaptureWorker>(options(), resolver_, pods_, events_, launcher_);
  }
  bool running(const std::string& uid) { return launcher_.runningFor(uid).has_value(); }

  // Starts a worker and adds the annotated Pod web (uid-1) with a READY sandbox s1, as the
  // informer would; waits until its tcpdump runs.
  std::unique_ptr<CaptureWorker> startWithRunningCapture(const k8s::Pod& pod) {
    auto worker = makeWorker();
    EXPECT_TRUE(worker->start().ok());
    resolver_.set(pod.uid, makeSandbox("s1", "/var/run/netns/cni-s1"));
    pods_.set(pod);
    worker->onAdd(pod);
    EXPECT_TRUE(waitUntil([&] { return running(pod.uid); }));
    return worker;
  }

  capture::testing::TempDir dir_;
  capture::testing::FakePodLister pods_;
  capture::testing::FakeResolver resolver_;
  capture::testing::FakeEventSink events_;
  capture::testing::FakeLauncher launcher_;
};

TEST_F(CaptureWorkerTest, PodEventsStartAndStopCaptures) {
  const k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  auto worker = startWithRunningCapture(pod);
  ASSERT_TRUE(waitUntil([&] { return worker->stats().active == 1; }));
  const auto captures = worker->captures();
  ASSERT_THAT(captures, SizeIs(1));
  EXPECT_EQ(captures[0].pod_name, "web");
  EXPECT_EQ(captures[0].state, CaptureState::kRunning);

  pods_.remove("uid-1");
  worker->onDelete(pod);
  ASSERT_TRUE(waitUntil([&] { return !running("uid-1"); }));
  ASSERT_TRUE(waitUntil([&] { return worker->stats().stopped == 1; }));
  EXPECT_THAT(worker->captures(), IsEmpty());
  EXPECT_THAT(events_.reasons(), ::testing::ElementsAre(kReasonStarted, kReasonStopped));
}

TEST_F(CaptureWorkerTest, AnUpdateRestartsWithTheNewFileCount) {
  const k8s::Pod before = makePod("uid-1", "default", "web", "2");
  auto worker = startWithRunningCapture(before);
  const k8s::Pod after = makePod("uid-1", "default", "web", "4");
  pods_.set(after);
  worker->onUpdate(before, after);
  ASSERT_TRUE(waitUntil([&] { return worker->stats().restarts == 1; }));
  EXPECT_EQ(launcher_.starts().back().argv[4], "4");
}

TEST_F(CaptureWorkerTest, AnExitReportedFromTheLaunchersThreadIsRestarted) {
  const k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  auto worker = startWithRunningCapture(pod);
  const ProcessId first = *launcher_.runningFor("uid-1");
  std::thread reaper([&] { launcher_.exit(first, ExitStatus{2, 0}, "oops", /*notify=*/true); });
  reaper.join();
  ASSERT_TRUE(waitUntil([&] {
    auto id = launcher_.runningFor("uid-1");
    return id && *id != first;
  }));
  const auto failed = events_.waitFor(kReasonFailed);
  ASSERT_TRUE(failed.has_value());
  EXPECT_THAT(failed->message, AllOf(HasSubstr("exited with status 2"), HasSubstr("oops")));
  ASSERT_TRUE(waitUntil([&] { return worker->stats().restarts == 1; }));
  EXPECT_EQ(worker->stats().failed, 1u);
}

TEST_F(CaptureWorkerTest, ResyncsAskTcpdumpForItsCountsAndTheyShowWithoutAReconcile) {
  const k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  auto worker = startWithRunningCapture(pod);
  const ProcessId id = *launcher_.runningFor("uid-1");
  const auto asked_for_counts = [&] {
    for (const auto& [to, signal] : launcher_.signals()) {
      if (to == id && signal == SIGUSR1) return true;
    }
    return false;
  };
  std::thread reaper([&] {
    launcher_.output(id, "tcpdump: listening on eth0, link-type EN10MB (Ethernet)\n", true);
  });
  reaper.join();
  ASSERT_TRUE(waitUntil(asked_for_counts)) << "a resync (every 50 ms here) sends SIGUSR1";
  std::thread answer([&] {
    launcher_.output(id,
                     "tcpdump: 7 packets captured, 9 packets received by filter, 0 packets "
                     "dropped by kernel\n",
                     true);
  });
  answer.join();
  ASSERT_TRUE(waitUntil([&] {
    const auto captures = worker->captures();
    return captures.size() == 1 && captures[0].counts && captures[0].counts->captured == 7;
  }));
  EXPECT_EQ(worker->stats().packets.received_by_filter, 9u);
}

TEST_F(CaptureWorkerTest, ResyncNoticesAReplacedSandboxWithoutAnyPodEvent) {
  const k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  auto worker = startWithRunningCapture(pod);
  resolver_.set("uid-1", makeSandbox("s2", "/var/run/netns/cni-s2"));  // the kubelet's doing
  ASSERT_TRUE(waitUntil([&] {
    return !launcher_.running().empty() &&
           launcher_.running().begin()->second.netns_path == "/var/run/netns/cni-s2";
  }));
  const auto restarted = events_.waitFor(kReasonRestarted);
  ASSERT_TRUE(restarted.has_value());
  EXPECT_THAT(restarted->message, HasSubstr("sandbox changed from s1 to s2"));
}

TEST_F(CaptureWorkerTest, APodWaitingForItsSandboxStartsWhenItIsReady) {
  auto worker = makeWorker();
  ASSERT_TRUE(worker->start().ok());
  const k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pods_.set(pod);
  worker->onAdd(pod);
  ASSERT_TRUE(waitUntil([&] { return resolver_.calls() >= 3; }));  // retried on its own
  EXPECT_FALSE(running("uid-1"));
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  ASSERT_TRUE(waitUntil([&] { return running("uid-1"); }));
}

TEST_F(CaptureWorkerTest, StartCleansUpAndPicksUpPodsAlreadyInTheCache) {
  dir_.touch("capture-old.pcap0");
  dir_.touch("capture-web.pcap0");
  pods_.set(makePod("uid-1", "default", "web", "2"));
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  auto worker = makeWorker();
  ASSERT_TRUE(worker->start().ok());
  EXPECT_THAT(dir_.names(), IsEmpty()) << "every capture starts afresh";
  ASSERT_TRUE(waitUntil([&] { return running("uid-1"); }));  // no Pod event needed
  EXPECT_FALSE(worker->start().ok());                        // once only
}

TEST_F(CaptureWorkerTest, StartFailsWithoutTheCaptureDirectory) {
  CaptureOptions o = options();
  o.capture_dir = dir_.file("missing");
  CaptureWorker worker(o, resolver_, pods_, events_, launcher_);
  EXPECT_FALSE(worker.start().ok());
}

TEST_F(CaptureWorkerTest, AnIdleWorkerStillPassesOncePerResync) {
  auto worker = makeWorker();
  EXPECT_EQ(worker->lastWorkerPass(), std::nullopt);
  ASSERT_TRUE(worker->start().ok());
  const auto first = worker->lastWorkerPass();
  ASSERT_TRUE(first.has_value());
  // No Pod, no event: only the resync (every 50 ms here) wakes the worker.
  EXPECT_TRUE(waitUntil([&] { return *worker->lastWorkerPass() >= *first + 100ms; }));
}

TEST_F(CaptureWorkerTest, StopEndsEveryTcpdumpAndKeepsTheFiles) {
  auto worker = makeWorker();
  ASSERT_TRUE(worker->start().ok());
  for (const char* uid : {"uid-1", "uid-2"}) {
    const k8s::Pod pod = makePod(uid, "default", std::string("web-") + uid, "2");
    resolver_.set(uid, makeSandbox(std::string("s-") + uid, "/var/run/netns/x"));
    pods_.set(pod);
    worker->onAdd(pod);
  }
  ASSERT_TRUE(waitUntil([&] { return launcher_.running().size() == 2; }));
  dir_.touch("capture-web-uid-1.pcap0");
  worker->stop();
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(launcher_.stops(), SizeIs(2));
  EXPECT_EQ(worker->stats().active, 0);
  EXPECT_EQ(dir_.names(), (std::set<std::string>{"capture-web-uid-1.pcap0"}));
  worker->stop();  // idempotent
}

TEST_F(CaptureWorkerTest, AStopThatWaitsHoldsNoOtherPod) {
  launcher_.ignoreSigterm(true);
  CaptureOptions o = options();
  o.stop_grace = 2s;
  CaptureWorker worker(o, resolver_, pods_, events_, launcher_);
  ASSERT_TRUE(worker.start().ok());
  for (const char* uid : {"uid-a", "uid-b"}) {
    resolver_.set(uid, makeSandbox(std::string("s-") + uid, "/var/run/netns/cni"));
  }
  const k8s::Pod a = makePod("uid-a", "default", "a", "1");
  pods_.set(a);
  worker.onAdd(a);
  ASSERT_TRUE(waitUntil([&] { return running("uid-a"); }));

  const k8s::Pod a_removed = makePod("uid-a", "default", "a", std::nullopt);
  pods_.set(a_removed);
  worker.onUpdate(a, a_removed);  // its tcpdump ignores SIGTERM: a stop of 2 s
  ASSERT_TRUE(waitUntil([&] { return !launcher_.stops().empty(); }));
  const auto asked = std::chrono::steady_clock::now();
  const k8s::Pod b = makePod("uid-b", "default", "b", "1");
  pods_.set(b);
  worker.onAdd(b);
  ASSERT_TRUE(waitUntil([&] { return running("uid-b"); }));
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  EXPECT_TRUE(running("uid-a")) << "still within its grace period";
}

TEST_F(CaptureWorkerTest, SigkillFollowsTheGracePeriodAndTheExitEndsTheCapture) {
  launcher_.ignoreSigterm(true);
  CaptureOptions o = options();
  o.stop_grace = 200ms;
  CaptureWorker worker(o, resolver_, pods_, events_, launcher_);
  ASSERT_TRUE(worker.start().ok());
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  const k8s::Pod pod = makePod("uid-1", "default", "web", "1");
  pods_.set(pod);
  worker.onAdd(pod);
  ASSERT_TRUE(waitUntil([&] { return running("uid-1"); }));
  const auto removed = std::chrono::steady_clock::now();
  pods_.remove("uid-1");
  worker.onDelete(pod);
  ASSERT_TRUE(events_.waitFor(kReasonStopped).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - removed, 200ms);
  EXPECT_THAT(launcher_.signals(),
              ::testing::ElementsAre(std::pair{1ul, SIGTERM}, std::pair{1ul, SIGKILL}));
}

TEST_F(CaptureWorkerTest, ShutdownWithFullNodeOfStuckTcpdumpsTakesOneGracePeriod) {
  constexpr int kPods = 110;
  launcher_.ignoreSigterm(true);
  CaptureOptions o = options();
  o.stop_grace = 300ms;
  o.kill_wait = 300ms;
  CaptureWorker worker(o, resolver_, pods_, events_, launcher_);
  ASSERT_TRUE(worker.start().ok());
  for (int i = 0; i < kPods; ++i) {
    const std::string uid = "uid-" + std::to_string(i);
    resolver_.set(uid, makeSandbox("s" + std::to_string(i), "/var/run/netns/cni"));
    const k8s::Pod pod = makePod(uid, "default", "web-" + std::to_string(i), "1");
    pods_.set(pod);
    worker.onAdd(pod);
  }
  ASSERT_TRUE(waitUntil([&] { return launcher_.running().size() == kPods; }));
  const auto stopping = std::chrono::steady_clock::now();
  worker.stop();
  const auto took = std::chrono::steady_clock::now() - stopping;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 2s) << "one grace period for all, not one per capture";
  EXPECT_THAT(launcher_.running(), IsEmpty());
  // Every SIGTERM first, then the SIGKILLs.
  const auto signals = launcher_.signals();
  ASSERT_THAT(signals, SizeIs(2 * kPods));
  for (int i = 0; i < kPods; ++i) EXPECT_EQ(signals[i].second, SIGTERM) << i;
  for (int i = kPods; i < 2 * kPods; ++i) EXPECT_EQ(signals[i].second, SIGKILL) << i;
}

TEST_F(CaptureWorkerTest, AResyncIsOneRuntimeCallWhenEveryBindingHolds) {
  auto worker = makeWorker();  // resyncs every 50 ms
  ASSERT_TRUE(worker->start().ok());
  for (int i = 0; i < 20; ++i) {
    const std::string uid = "uid-" + std::to_string(i);
    resolver_.set(uid, makeSandbox("s" + std::to_string(i), "/var/run/netns/cni"));
    const k8s::Pod pod = makePod(uid, "default", "web-" + std::to_string(i), "1");
    pods_.set(pod);
    worker->onAdd(pod);
  }
  ASSERT_TRUE(waitUntil([&] { return launcher_.running().size() == 20; }));
  const int lookups = resolver_.calls();
  const int snapshots = resolver_.snapshots();
  ASSERT_TRUE(waitUntil([&] { return resolver_.snapshots() >= snapshots + 5; }));
  EXPECT_EQ(resolver_.calls(), lookups) << "no per-Pod call while every sandbox stays";
}

TEST_F(CaptureWorkerTest, AFrozenRuntimeDelaysNoPodEvent) {
  CaptureOptions o = options();
  o.resync_period = 100ms;
  CaptureWorker worker(o, resolver_, pods_, events_, launcher_);
  ASSERT_TRUE(worker.start().ok());
  std::vector<k8s::Pod> pods;
  for (int i = 0; i < 20; ++i) {
    const std::string uid = "uid-" + std::to_string(i);
    resolver_.set(uid, makeSandbox("s" + std::to_string(i), "/var/run/netns/cni"));
    pods.push_back(makePod(uid, "default", "web-" + std::to_string(i), "1"));
    pods_.set(pods.back());
    worker.onAdd(pods.back());
  }
  ASSERT_TRUE(waitUntil([&] { return launcher_.running().size() == 20; }));
  resolver_.freeze(5s);  // every call hangs 5 s, resyncs included
  ASSERT_TRUE(waitUntil([&] { return resolver_.snapshots() > 0; }));

  // A new N for one capture, the end of another: neither needs the runtime.
  const auto asked = std::chrono::steady_clock::now();
  const k8s::Pod more = makePod("uid-3", "default", "web-3", "4");
  pods_.set(more);
  worker.onUpdate(pods[3], more);
  pods_.remove("uid-7");
  worker.onDelete(pods[7]);
  ASSERT_TRUE(waitUntil([&] {
    return !running("uid-7") && launcher_.starts().size() == 21 &&
           launcher_.starts().back().argv[4] == "4";
  }));
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s);
  resolver_.thaw();
}

// The engine end to end on real parts, short of containerd and the API server: the real
// launcher and tcpdump in a real network namespace, which a fake resolver reports as the Pod's.
TEST(CaptureWorkerWithRealTcpdump, AnnotationStartsACaptureAndRemovingItDeletesTheFiles) {
  E2E_REQUIRE_ROOT();
  proc::testing::TestNetns netns;
  ASSERT_TRUE(netns.ok());
  capture::testing::TempDir dir;
  capture::testing::FakePodLister pods;
  capture::testing::FakeResolver resolver;
  capture::testing::FakeEventSink events;
  auto tcpdump = probeTcpdump(kDefaultTcpdumpPath);
  ASSERT_TRUE(tcpdump.ok()) << tcpdump.status();
  auto launcher = NetnsLauncher::create({});
  ASSERT_TRUE(launcher.ok());
  CaptureOptions options;
  options.node_name = "node-1";
  options.capture_dir = dir.path();
  options.tcpdump = *tcpdump;
  options.resync_period = 200ms;  // how often tcpdump is asked for its counts
  CaptureWorker worker(options, resolver, pods, events, **launcher);
  ASSERT_TRUE(worker.start().ok());

  const k8s::Pod pod = makePod("uid-1", "default", "web", "3");
  resolver.set("uid-1", makeSandbox("sandbox-1", netns.path(), 0));
  pods.set(pod);
  worker.onAdd(pod);
  {
    proc::testing::LoopbackTraffic traffic(netns.path());
    ASSERT_TRUE(waitUntil(
        [&] {
          struct stat st;
          return ::stat(dir.file("capture-web.pcap0").c_str(), &st) == 0 && st.st_size > 24;
        },
        20s))
        << "no packets captured";
    // Its counts, asked for at each resync, grow while it runs; so does what its files hold.
    const auto captured = [&]() -> uint64_t {
      const auto captures = worker.captures();
      return captures.size() == 1 && captures[0].counts ? captures[0].counts->captured : 0;
    };
    ASSERT_TRUE(waitUntil([&] { return captured() > 0; }, 20s)) << "no counts from tcpdump";
    const uint64_t first = captured();
    ASSERT_TRUE(waitUntil([&] { return captured() > first; }, 20s)) << "the counts stay";
    EXPECT_GT(worker.captures()[0].bytes_on_disk, 24u);
    EXPECT_EQ(worker.captures()[0].state, CaptureState::kRunning);
  }
  EXPECT_EQ((*launcher)->running(), 1u);
  const auto started = events.waitFor(kReasonStarted);
  ASSERT_TRUE(started.has_value());
  EXPECT_THAT(started->message, AllOf(HasSubstr(dir.file("capture-web.pcap0")),
                                      HasSubstr("sandbox sandbox-1"), HasSubstr(netns.path())));

  const k8s::Pod unannotated = makePod("uid-1", "default", "web", std::nullopt);
  pods.set(unannotated);
  worker.onUpdate(pod, unannotated);
  ASSERT_TRUE(waitUntil([&] { return (*launcher)->running() == 0 && dir.names().empty(); }));
  const auto stopped = events.waitFor(kReasonStopped);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_THAT(stopped->message, HasSubstr("deleted " + dir.file("capture-web.pcap0")));
  worker.stop();
}

}  // namespace
}  // namespace worker

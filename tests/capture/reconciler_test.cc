#include "capture/reconciler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "capture/filter.h"
#include "tests/capture/fakes.h"

namespace capture {
namespace {

using namespace std::chrono_literals;
using base::Duration;
using proc::ExitStatus;
using proc::ProcessExit;
using proc::ProcessId;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::makePod;
using testing::makeSandbox;
using ::testing::Not;
using ::testing::Optional;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

class ReconcilerTest : public ::testing::Test {
 protected:
  ReconcilerTest() { remake(); }

  CaptureOptions options() const {
    CaptureOptions o;
    o.node_name = "node-1";
    o.capture_dir = dir_.path();
    o.tcpdump = TcpdumpCommand{"/usr/bin/tcpdump", "1"};
    o.sandbox_retry = 2s;
    o.backoff_initial = 1s;
    o.backoff_max = 8s;
    o.stable_after = 60s;
    o.backoff_jitter = 0;  // exact delays to check; Backoff's own test covers the jitter
    return o;
  }
  void remake(CaptureOptions o) {
    reconciler_ = std::make_unique<Reconciler>(std::move(o), pods_, events_, launcher_, clock_);
  }
  void remake() { remake(options()); }

  // Plays the CaptureWorker: reconciles `uid`, then answers the sandbox look-ups the Reconciler
  // asks for (from the fake resolver) and hands it the exits of the tcpdumps it stopped,
  // reconciling the Pods they concern, until nothing is left. Returns what the last reconcile
  // of `uid` asked for.
  std::optional<Duration> reconcile(const std::string& uid) {
    std::map<std::string, std::optional<Duration>> asked;
    asked[uid] = reconciler_->reconcile(uid);
    settle(asked);
    return asked[uid];
  }
  void settle(std::map<std::string, std::optional<Duration>>& asked) {
    for (bool busy = true; busy;) {
      busy = false;
      for (const SandboxLookup& lookup : reconciler_->takeLookups()) {
        reconciler_->recordSandbox(lookup.pod_uid, resolver_.resolve(lookup.sandbox_uid));
        asked[lookup.pod_uid] = reconciler_->reconcile(lookup.pod_uid);
        busy = true;
      }
      for (const std::string& filter : reconciler_->takeFilterChecks()) {
        for (const std::string& pod :
             reconciler_->recordFilterVerdict(filter, validateCaptureFilter(filter))) {
          asked[pod] = reconciler_->reconcile(pod);
        }
        busy = true;
      }
      for (const ProcessExit& exit : launcher_.takeExits()) {
        if (std::optional<std::string> pod = reconciler_->recordExit(exit)) {
          asked[*pod] = reconciler_->reconcile(*pod);
        }
        busy = true;
      }
    }
  }
  // A tcpdump ends by itself, and the worker's turn that follows.
  std::optional<Duration> exitOf(ProcessId id, ExitStatus status, std::string stderr_tail) {
    const std::optional<std::string> pod =
        reconciler_->recordExit(launcher_.exit(id, status, std::move(stderr_tail)));
    if (!pod) return std::nullopt;
    return reconcile(*pod);
  }
  // A resync: the resolver's snapshot against every capture's binding; the Pods whose binding
  // changed are reconciled.
  void resync() {
    auto snapshot = resolver_.snapshot();
    ASSERT_TRUE(snapshot.ok());
    for (const std::string& pod : reconciler_->checkBindings(*snapshot)) reconcile(pod);
  }

  // A Pod web (uid-1) in default, annotated with `files`, running in sandbox s1.
  void startWeb(int files = 3, const std::string& uid = "uid-1", const std::string& ns = "default",
                const std::string& name = "web", const std::string& sandbox = "s1") {
    pods_.set(makePod(uid, ns, name, std::to_string(files)));
    resolver_.set(uid, makeSandbox(sandbox, "/var/run/netns/cni-" + sandbox));
    EXPECT_EQ(reconcile(uid), std::nullopt);
    ASSERT_TRUE(launcher_.runningFor(uid).has_value());
  }
  std::string path(const std::string& name) const { return dir_.file(name); }
  // web (uid-1) annotated with N = 2 and `more` (filter, duration, packets), in sandbox s1.
  void startWebWith(std::map<std::string, std::string> more) {
    k8s::Pod pod = makePod("uid-1", "default", "web", "2");
    pod.annotations.merge(more);
    pods_.set(pod);
    resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
    reconcile("uid-1");
  }

  testing::TempDir dir_;
  testing::FakePodLister pods_;
  testing::FakeResolver resolver_;
  testing::FakeEventSink events_;
  testing::FakeLauncher launcher_;
  testing::FakeClock clock_;
  std::unique_ptr<Reconciler> reconciler_;
};

TEST_F(ReconcilerTest, StartsTcpdumpInTheSandboxOfAnAnnotatedPod) {
  startWeb(3);
  const auto starts = launcher_.starts();
  ASSERT_THAT(starts, SizeIs(1));
  EXPECT_EQ(starts[0].owner, "uid-1");
  EXPECT_THAT(starts[0].argv, ElementsAre("/usr/bin/tcpdump", "-C", "1", "-W", "3", "-w",
                                          path("capture-web.pcap"), "-Z", "root", "-U"));
  EXPECT_EQ(starts[0].netns_path, "/var/run/netns/cni-s1");
  EXPECT_EQ(starts[0].sandbox_pid, 4242);
  EXPECT_EQ(starts[0].sandbox_id, "s1");  // what the /proc/<pid> fallback checks the pid by

  const auto events = events_.events();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].reason, kReasonStarted);
  EXPECT_EQ(events[0].type, k8s::EventType::kNormal);
  EXPECT_EQ(events[0].object, (k8s::ObjectReference{"Pod", "v1", "default", "web", "uid-1"}));
  EXPECT_THAT(events[0].message,
              AllOf(HasSubstr(path("capture-web.pcap0")), HasSubstr("capture-web.pcap2"),
                    HasSubstr("3 files"), HasSubstr("sandbox s1"),
                    HasSubstr("netns /var/run/netns/cni-s1"), HasSubstr("pid 1001")));

  const auto stats = reconciler_->stats();
  EXPECT_EQ(stats.active, 1);
  EXPECT_EQ(stats.started, 1u);
  const auto captures = reconciler_->captures();
  ASSERT_THAT(captures, SizeIs(1));
  EXPECT_EQ(captures[0].state, CaptureState::kRunning);
  EXPECT_EQ(captures[0].sandbox_id, "s1");
  EXPECT_EQ(captures[0].file_path, path("capture-web.pcap"));
  EXPECT_EQ(toJson(captures[0])["state"], "Running");

  // Nothing changed: nothing happens, however often it is looked at.
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_THAT(events_.events(), SizeIs(1));
}

TEST_F(ReconcilerTest, UsesTheProbedFileSizeArgument) {
  CaptureOptions o = options();
  o.tcpdump.file_size = "1M";
  remake(o);
  startWeb(1);
  EXPECT_THAT(launcher_.starts()[0].argv,
              ElementsAre("/usr/bin/tcpdump", "-C", "1M", "-W", "1", "-w", path("capture-web.pcap"),
                          "-Z", "root", "-U"));
  EXPECT_THAT(events_.events()[0].message, AllOf(HasSubstr("1 file "), Not(HasSubstr("..."))));
}

TEST_F(ReconcilerTest, IgnoresPodsWithoutTheAnnotation) {
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_EQ(reconcile("uid-unknown"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  EXPECT_THAT(events_.events(), IsEmpty());
  EXPECT_EQ(resolver_.calls(), 0);
}

TEST_F(ReconcilerTest, IgnoresPodsOfOtherNodes) {
  pods_.set(makePod("uid-1", "default", "web", "3", "node-2"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  EXPECT_THAT(events_.events(), IsEmpty());
}

TEST_F(ReconcilerTest, InvalidAnnotationWarnsOnceAndStartsNothing) {
  for (const std::string value :
       {"", "abc", "0", "-1", "5.5", " 5", "1e3", "+5", "11", "123456789012345678901234567890"}) {
    SCOPED_TRACE(value);
    events_.clear();
    pods_.set(makePod("uid-1", "default", "web", value));
    reconcile("uid-1");
    reconcile("uid-1");  // a later update of the same Pod says nothing new
    const auto events = events_.events();
    ASSERT_THAT(events, SizeIs(1));
    EXPECT_EQ(events[0].reason, kReasonInvalidAnnotation);
    EXPECT_EQ(events[0].type, k8s::EventType::kWarning);
    EXPECT_THAT(events[0].message,
                AllOf(HasSubstr("\"" + value + "\""), HasSubstr("from 1 to 10")));
  }
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  EXPECT_EQ(resolver_.calls(), 0);
}

TEST_F(ReconcilerTest, AnnotationThatBecomesInvalidStopsTheCapture) {
  startWeb(3);
  dir_.touch("capture-web.pcap0");
  pods_.set(makePod("uid-1", "default", "web", "many"));
  reconcile("uid-1");
  EXPECT_THAT(launcher_.stops(), ElementsAre(1u));
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(dir_.names(), IsEmpty());
  // The Warning as soon as the annotation is read, the stop once tcpdump is gone.
  EXPECT_THAT(events_.reasons(),
              ElementsAre(kReasonStarted, kReasonInvalidAnnotation, kReasonStopped));
  EXPECT_THAT(events_.withReason(kReasonStopped)[0].message,
              HasSubstr("deleted " + path("capture-web.pcap0")));
}

TEST_F(ReconcilerTest, RemovedAnnotationStopsTheCaptureAndDeletesOnlyItsFiles) {
  startWeb(3);
  for (const char* name : {"capture-web.pcap0", "capture-web.pcap1", "capture-web.pcap2",
                           "capture-web-1.pcap0", "capture-web.pcap0.old", "other.txt"}) {
    dir_.touch(name);
  }
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.stops(), ElementsAre(1u));
  EXPECT_THAT(dir_.names(),
              UnorderedElementsAre("capture-web-1.pcap0", "capture-web.pcap0.old", "other.txt"));
  const auto stopped = events_.withReason(kReasonStopped);
  ASSERT_THAT(stopped, SizeIs(1));
  EXPECT_THAT(stopped[0].message,
              AllOf(HasSubstr("annotation tcpdump.antrea.io was removed"),
                    HasSubstr(path("capture-web.pcap0")), HasSubstr(path("capture-web.pcap2")),
                    Not(HasSubstr("capture-web-1"))));
  EXPECT_EQ(reconciler_->stats().stopped, 1u);
  EXPECT_EQ(reconciler_->stats().active, 0);
  EXPECT_THAT(reconciler_->captures(), IsEmpty());
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, DeletedPodStopsTheCapture) {
  startWeb(2);
  dir_.touch("capture-web.pcap0");
  pods_.remove("uid-1");
  reconcile("uid-1");
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(dir_.names(), IsEmpty());
  const auto stopped = events_.withReason(kReasonStopped);
  ASSERT_THAT(stopped, SizeIs(1));
  EXPECT_EQ(stopped[0].object.uid, "uid-1");
  EXPECT_THAT(stopped[0].message, HasSubstr("the Pod was deleted"));
}

TEST_F(ReconcilerTest, TerminatingPodStopsTheCapture) {
  startWeb(2);
  k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pod.terminating = true;
  pods_.set(pod);
  reconcile("uid-1");
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(events_.withReason(kReasonStopped)[0].message, HasSubstr("terminating"));
}

TEST_F(ReconcilerTest, FinishedPodStopsTheCapture) {
  startWeb(2);
  k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pod.phase = "Succeeded";
  pods_.set(pod);
  reconcile("uid-1");
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(events_.withReason(kReasonStopped)[0].message, HasSubstr("phase Succeeded"));
}

TEST_F(ReconcilerTest, PodThatLeavesTheNodeStopsTheCapture) {
  startWeb(2);
  pods_.set(makePod("uid-1", "default", "web", "2", "node-2"));
  reconcile("uid-1");
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(events_.withReason(kReasonStopped)[0].message, HasSubstr("not on node node-1"));
}

TEST_F(ReconcilerTest, ChangedFileCountRestartsWithTheNewCount) {
  startWeb(3);
  dir_.touch("capture-web.pcap0");
  pods_.set(makePod("uid-1", "default", "web", "5"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.stops(), ElementsAre(1u));
  const auto starts = launcher_.starts();
  ASSERT_THAT(starts, SizeIs(2));
  EXPECT_EQ(starts[1].argv[4], "5");
  EXPECT_THAT(dir_.names(), IsEmpty());  // the old rotation set is gone
  const auto restarted = events_.withReason(kReasonRestarted);
  ASSERT_THAT(restarted, SizeIs(1));
  EXPECT_THAT(restarted[0].message,
              AllOf(HasSubstr("file count changed from 3 to 5"), HasSubstr("capture-web.pcap4")));
  EXPECT_EQ(reconciler_->stats().restarts, 1u);
  EXPECT_EQ(reconciler_->captures()[0].files, 5);
}

TEST_F(ReconcilerTest, NewSandboxMovesTheCaptureIntoItsNetns) {
  startWeb(3);
  resolver_.set("uid-1", makeSandbox("s2", "/var/run/netns/cni-s2", 5151));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);  // an update: the binding holds, no look-up
  EXPECT_THAT(launcher_.stops(), IsEmpty());
  EXPECT_EQ(resolver_.calls(), 1);
  resync();  // sees s2, looks it up, moves the capture
  EXPECT_THAT(launcher_.stops(), ElementsAre(1u));
  const auto starts = launcher_.starts();
  ASSERT_THAT(starts, SizeIs(2));
  EXPECT_EQ(starts[1].netns_path, "/var/run/netns/cni-s2");
  EXPECT_EQ(starts[1].sandbox_pid, 5151);
  const auto restarted = events_.withReason(kReasonRestarted);
  ASSERT_THAT(restarted, SizeIs(1));
  EXPECT_THAT(restarted[0].message, AllOf(HasSubstr("sandbox changed from s1 to s2"),
                                          HasSubstr("netns /var/run/netns/cni-s2")));
  EXPECT_EQ(reconciler_->captures()[0].sandbox_id, "s2");
}

TEST_F(ReconcilerTest, SandboxBeingReplacedKeepsTheRunningCaptureUntilTheNewOneIsReady) {
  startWeb(3);
  resolver_.set("uid-1", cri::resolveError(cri::ResolveFailure::kNoReadySandbox, "not ready"));
  resync();  // no READY sandbox: looked up, and kept running
  EXPECT_THAT(reconcile("uid-1"), Optional(2s));
  EXPECT_THAT(launcher_.stops(), IsEmpty());
  resolver_.set("uid-1", makeSandbox("s2", "/var/run/netns/cni-s2"));
  reconcile("uid-1");
  EXPECT_THAT(launcher_.stops(), ElementsAre(1u));
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonStarted, kReasonRestarted));
}

TEST_F(ReconcilerTest, SandboxReplacedAfterTcpdumpDiedWithTheOldOneIsARestartToo) {
  // What containerd does: stopping a sandbox deletes its interface, so tcpdump exits before
  // the kubelet's next sandbox is READY.
  startWeb(3);
  dir_.touch("capture-web.pcap0");
  reconciler_->recordExit(launcher_.exit(*launcher_.runningFor("uid-1"), {1, 0},
                                         "tcpdump: pcap_loop: The interface disappeared"));
  resolver_.set("uid-1", makeSandbox("s2", "/var/run/netns/cni-s2"));
  clock_.advance(1s);
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  ASSERT_TRUE(launcher_.runningFor("uid-1").has_value());
  EXPECT_EQ(launcher_.starts().back().netns_path, "/var/run/netns/cni-s2");
  EXPECT_THAT(dir_.names(), Not(::testing::Contains("capture-web.pcap0")))
      << "the old sandbox's packets would mix with the new one's";
  // The exit is explained by the look-up that follows it: the sandbox went, no failure.
  EXPECT_THAT(events_.withReason(kReasonFailed), IsEmpty());
  const auto restarted = events_.withReason(kReasonRestarted);
  ASSERT_THAT(restarted, SizeIs(1));
  EXPECT_THAT(restarted[0].message, AllOf(HasSubstr("sandbox changed from s1 to s2"),
                                          HasSubstr("netns /var/run/netns/cni-s2")));
  EXPECT_EQ(reconciler_->captures()[0].sandbox_id, "s2");
}

TEST_F(ReconcilerTest, FailedStartsInANewSandboxBackOffAndWarnOnce) {
  // Both ways a capture moves: tcpdump still running in the old sandbox, or gone with it.
  for (const bool died_with_the_old_sandbox : {false, true}) {
    SCOPED_TRACE(died_with_the_old_sandbox);
    launcher_.failStarts(absl::OkStatus());
    events_.clear();
    startWeb(3, "uid-1", "default", "web", "s1");
    resolver_.set("uid-1", makeSandbox("s2", "/var/run/netns/cni-s2"));
    if (died_with_the_old_sandbox) {
      reconciler_->recordExit(launcher_.exit(*launcher_.runningFor("uid-1"), {1, 0},
                                             "tcpdump: pcap_loop: The interface disappeared"));
    }
    launcher_.failStarts(absl::FailedPreconditionError("cannot enter the Pod's network namespace"));
    dir_.touch("capture-web.pcap0");
    // Still running: the resync notices s2 (and its first start fails at once).
    if (!died_with_the_old_sandbox) resync();
    const std::vector<Duration> expected_delays = {1s, 2s, 4s, 8s, 8s};
    for (const Duration delay : expected_delays) {
      EXPECT_THAT(reconcile("uid-1"), Optional(delay));
      dir_.touch("capture-web.pcap0");  // a retry deletes nothing: its start wrote nothing
      clock_.advance(delay);
    }
    EXPECT_THAT(dir_.names(), ::testing::Contains("capture-web.pcap0"));
    const auto failed = events_.withReason(kReasonFailed);
    ASSERT_THAT(failed, SizeIs(1));
    EXPECT_THAT(failed[0].message, HasSubstr("cannot start tcpdump in sandbox s2"));
    EXPECT_EQ(reconciler_->captures()[0].sandbox_id, "s2");
    EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kBackoff);

    launcher_.failStarts(absl::OkStatus());
    EXPECT_EQ(reconcile("uid-1"), std::nullopt);
    EXPECT_EQ(launcher_.starts().back().netns_path, "/var/run/netns/cni-s2");
    const auto restarted = events_.withReason(kReasonRestarted);
    ASSERT_THAT(restarted, SizeIs(1));
    EXPECT_THAT(restarted[0].message, HasSubstr("sandbox changed from s1 to s2"));
    EXPECT_EQ(reconciler_->captures()[0].restarts, 1u);

    pods_.remove("uid-1");
    reconcile("uid-1");
  }
}

TEST_F(ReconcilerTest, TcpdumpEndingWithItsSandboxIsNoFailure) {
  // containerd stops the sandbox (NOTREADY) and then removes its interface, which ends tcpdump.
  startWeb(3);
  resolver_.set("uid-1", cri::resolveError(cri::ResolveFailure::kNoReadySandbox, "not ready"));
  reconciler_->recordExit(launcher_.exit(*launcher_.runningFor("uid-1"), {1, 0},
                                         "tcpdump: pcap_loop: The interface disappeared"));
  EXPECT_THAT(reconcile("uid-1"), Optional(2s)) << "waits for the next sandbox, no backoff";
  EXPECT_THAT(events_.withReason(kReasonFailed), IsEmpty());
  EXPECT_EQ(reconciler_->stats().failed, 0u);
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kPending);

  resolver_.set("uid-1", makeSandbox("s2", "/var/run/netns/cni-s2"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_EQ(launcher_.starts().back().netns_path, "/var/run/netns/cni-s2");
  const auto restarted = events_.withReason(kReasonRestarted);
  ASSERT_THAT(restarted, SizeIs(1));
  EXPECT_THAT(restarted[0].message,
              AllOf(HasSubstr("sandbox changed from s1 to s2"), Not(HasSubstr("tcpdump exited"))));
}

TEST_F(ReconcilerTest, TcpdumpEndingWithItsPodIsNoFailure) {
  startWeb(3);
  resolver_.set("uid-1", cri::resolveError(cri::ResolveFailure::kNoSandbox, "gone"));
  reconciler_->recordExit(launcher_.exit(*launcher_.runningFor("uid-1"), {1, 0},
                                         "tcpdump: pcap_loop: The interface disappeared"));
  pods_.remove("uid-1");
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonStarted, kReasonStopped));
}

TEST_F(ReconcilerTest, RecreatedPodWithTheSameNameTakesOverTheCapture) {
  startWeb(3, "uid-1", "default", "web", "s1");
  dir_.touch("capture-web.pcap0");
  pods_.remove("uid-1");
  pods_.set(makePod("uid-2", "default", "web", "3"));
  resolver_.set("uid-2", makeSandbox("s2", "/var/run/netns/cni-s2"));
  EXPECT_EQ(reconcile("uid-2"), std::nullopt);  // the new UID's event came first
  EXPECT_THAT(launcher_.stops(), ElementsAre(1u));
  ASSERT_TRUE(launcher_.runningFor("uid-2").has_value());
  EXPECT_THAT(launcher_.starts()[1].argv[6], path("capture-web.pcap"));  // the same name
  const auto restarted = events_.withReason(kReasonRestarted);
  ASSERT_THAT(restarted, SizeIs(1));
  EXPECT_EQ(restarted[0].object.uid, "uid-2");
  EXPECT_THAT(restarted[0].message, AllOf(HasSubstr("recreated"), HasSubstr("uid-1"),
                                          HasSubstr("sandbox s1"), HasSubstr("sandbox s2")));
  // The old UID's own turn finds nothing left to do.
  reconcile("uid-1");
  EXPECT_THAT(launcher_.running(), SizeIs(1));
  EXPECT_THAT(events_.events(), SizeIs(2));
}

TEST_F(ReconcilerTest, TcpdumpThatExitsIsRestartedWithCappedExponentialBackoff) {
  startWeb(3);
  ProcessId id = *launcher_.runningFor("uid-1");
  const ExitStatus crashed{1, 0};
  const std::vector<Duration> expected_delays = {1s, 2s, 4s, 8s, 8s};
  for (size_t i = 0; i < expected_delays.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_THAT(exitOf(id, crashed, "tcpdump: eth0: That device went down"),
                Optional(expected_delays[i]));
    EXPECT_EQ(reconciler_->stats().active, 0);
    EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kBackoff);
    EXPECT_THAT(reconcile("uid-1"), Optional(expected_delays[i]));
    clock_.advance(expected_delays[i] - 1ms);
    EXPECT_THAT(reconcile("uid-1"), Optional(1ms));  // still waiting
    clock_.advance(1ms);
    EXPECT_EQ(reconcile("uid-1"), std::nullopt);
    ASSERT_TRUE(launcher_.runningFor("uid-1").has_value());
    id = *launcher_.runningFor("uid-1");
  }
  // One Warning and one restart notice for the whole crash loop, not one per iteration.
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_EQ(failed[0].type, k8s::EventType::kWarning);
  EXPECT_THAT(failed[0].message,
              AllOf(HasSubstr("tcpdump exited with status 1"), HasSubstr("That device went down")));
  const auto restarted = events_.withReason(kReasonRestarted);
  ASSERT_THAT(restarted, SizeIs(1));
  EXPECT_THAT(restarted[0].message, HasSubstr("tcpdump exited with status 1"));
  const auto stats = reconciler_->stats();
  EXPECT_EQ(stats.failed, 5u);
  EXPECT_EQ(stats.restarts, 5u);
  EXPECT_EQ(stats.started, 6u);
  EXPECT_EQ(reconciler_->captures()[0].restarts, 5u);
}

TEST_F(ReconcilerTest, ADifferentExitIsReportedAgain) {
  startWeb(3);
  exitOf(*launcher_.runningFor("uid-1"), {1, 0}, "first");
  clock_.advance(1s);
  reconcile("uid-1");
  exitOf(*launcher_.runningFor("uid-1"), {0, 9}, "");
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(2));
  EXPECT_THAT(failed[1].message, HasSubstr("killed by signal 9"));
}

TEST_F(ReconcilerTest, ACrashLoopIsReportedOnceThoughTcpdumpsCountersDiffer) {
  startWeb(3);
  const Duration delays[] = {1s, 2s, 4s};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    // tcpdump prints its statistics after the error: different after every run.
    exitOf(*launcher_.runningFor("uid-1"), {1, 0},
           absl::StrCat("tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length "
                        "262144 bytes\ntcpdump: pcap_loop: recvfrom: Network is down\n",
                        10 * i, " packets captured\n", 10 * i + 3, " packets received by filter\n",
                        i, " packets dropped by kernel"));
    clock_.advance(delays[i]);
    EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  }
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_THAT(failed[0].message,
              AllOf(HasSubstr("tcpdump exited with status 1: tcpdump: pcap_loop: recvfrom: "
                              "Network is down"),
                    Not(HasSubstr("packets")), Not(HasSubstr("listening on"))));
  EXPECT_THAT(events_.withReason(kReasonRestarted), SizeIs(1));
  EXPECT_EQ(reconciler_->captures()[0].restarts, 3u);
  EXPECT_EQ(reconciler_->stats().failed, 3u);
}

TEST_F(ReconcilerTest, BackoffStartsAgainAfterAStableRun) {
  startWeb(3);
  for (int i = 0; i < 3; ++i) {
    exitOf(*launcher_.runningFor("uid-1"), {1, 0}, "boom");
    clock_.advance(10s);
    reconcile("uid-1");
  }
  clock_.advance(61s);  // ran long enough to count as healthy
  EXPECT_THAT(exitOf(*launcher_.runningFor("uid-1"), {1, 0}, "boom"), Optional(1s));
  EXPECT_THAT(events_.withReason(kReasonFailed), SizeIs(2));  // a new episode is reported
}

TEST_F(ReconcilerTest, ExitOfAProcessAlreadyReplacedIsIgnored) {
  startWeb(3);
  const ProcessId old_id = *launcher_.runningFor("uid-1");
  pods_.set(makePod("uid-1", "default", "web", "4"));
  reconcile("uid-1");
  reconciler_->recordExit(ProcessExit{old_id, "uid-1", {0, 15}, "", ""});
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kRunning);
  EXPECT_THAT(events_.withReason(kReasonFailed), IsEmpty());
}

TEST_F(ReconcilerTest, PodWithoutAReadySandboxIsRetriedUntilItHasOne) {
  pods_.set(makePod("uid-1", "default", "web", "3"));
  for (auto failure : {cri::ResolveFailure::kNoSandbox, cri::ResolveFailure::kNoReadySandbox,
                       cri::ResolveFailure::kNetnsClosed}) {
    resolver_.set("uid-1", cri::resolveError(failure, "not yet"));
    EXPECT_THAT(reconcile("uid-1"), Optional(2s));
  }
  cri::SandboxInfo not_ready = makeSandbox("s1", "/var/run/netns/cni-s1");
  not_ready.state = cri::SandboxState::kNotReady;
  resolver_.set("uid-1", not_ready);
  EXPECT_THAT(reconcile("uid-1"), Optional(2s));
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  EXPECT_THAT(events_.events(), IsEmpty());  // waiting for a sandbox is normal, not news
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kPending);

  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonStarted));
}

TEST_F(ReconcilerTest, UnreachableRuntimeIsRetriedWithBackoffAndReportedOnce) {
  pods_.set(makePod("uid-1", "default", "web", "3"));
  resolver_.set("uid-1",
                cri::resolveError(cri::ResolveFailure::kRuntimeUnavailable, "connection refused"));
  EXPECT_THAT(reconcile("uid-1"), Optional(1s));
  EXPECT_THAT(reconcile("uid-1"), Optional(1s));  // an update during the backoff: no new call
  EXPECT_EQ(resolver_.calls(), 1);
  clock_.advance(1s);
  EXPECT_THAT(reconcile("uid-1"), Optional(2s));
  clock_.advance(2s);
  EXPECT_THAT(reconcile("uid-1"), Optional(4s));
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_THAT(failed[0].message,
              AllOf(HasSubstr("container runtime"), HasSubstr("connection refused")));
  const std::string last_error = reconciler_->captures()[0].last_error;
  EXPECT_THAT(last_error, HasSubstr("connection refused"));
  EXPECT_THAT(failed[0].message, ::testing::StartsWith(last_error));

  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  clock_.advance(4s);
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonFailed, kReasonStarted));
  EXPECT_EQ(reconciler_->captures()[0].last_error, "");
}

TEST_F(ReconcilerTest, UnreachableRuntimeDoesNotStopARunningCapture) {
  startWeb(3);
  resolver_.set("uid-1", cri::resolveError(cri::ResolveFailure::kRuntimeUnavailable, "down"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.running(), SizeIs(1));
  EXPECT_THAT(events_.events(), SizeIs(1));
}

TEST_F(ReconcilerTest, HostNetworkPodGetsOneWarningAndNoCapture) {
  k8s::Pod pod = makePod("uid-1", "default", "web", "3");
  pod.host_network = true;
  pods_.set(pod);
  reconcile("uid-1");
  reconcile("uid-1");
  const auto events = events_.events();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].reason, kReasonFailed);
  EXPECT_EQ(events[0].type, k8s::EventType::kWarning);
  EXPECT_THAT(events[0].message, AllOf(HasSubstr("hostNetwork"), HasSubstr("node's")));
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  EXPECT_EQ(resolver_.calls(), 0);
}

TEST_F(ReconcilerTest, RuntimeReportingHostNetworkGetsOneWarningAndNoCapture) {
  pods_.set(makePod("uid-1", "default", "web", "3"));
  resolver_.set("uid-1", cri::resolveError(cri::ResolveFailure::kHostNetwork, "no netns"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonFailed));
  EXPECT_THAT(events_.events()[0].message, HasSubstr("node's network namespace"));
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, SameNameInTwoNamespacesGetsTwoFileNames) {
  startWeb(2, "uid-a", "team-a", "web", "sa");
  startWeb(2, "uid-b", "team-b", "web", "sb");
  const auto starts = launcher_.starts();
  EXPECT_EQ(starts[0].argv[6], path("capture-web.pcap"));
  EXPECT_EQ(starts[1].argv[6], path("capture-team-b_web.pcap"));
  const auto started = events_.withReason(kReasonStarted);
  ASSERT_THAT(started, SizeIs(2));
  EXPECT_THAT(started[1].message, AllOf(HasSubstr(path("capture-team-b_web.pcap0")),
                                        HasSubstr("capture-web.pcap is already used by Pod "
                                                  "team-a/web")));

  // Each stop deletes its own files only.
  for (const char* name : {"capture-web.pcap0", "capture-web.pcap1", "capture-team-b_web.pcap0"}) {
    dir_.touch(name);
  }
  pods_.remove("uid-b");
  reconcile("uid-b");
  EXPECT_THAT(dir_.names(), UnorderedElementsAre("capture-web.pcap0", "capture-web.pcap1"));
  dir_.touch("capture-team-b_web.pcap0");
  pods_.remove("uid-a");
  reconcile("uid-a");
  EXPECT_THAT(dir_.names(), UnorderedElementsAre("capture-team-b_web.pcap0"));

  // The plain name is free again: the next Pod called web gets it.
  startWeb(2, "uid-c", "team-c", "web", "sc");
  EXPECT_EQ(launcher_.starts().back().argv[6], path("capture-web.pcap"));
}

TEST_F(ReconcilerTest, LongPodNameGetsAShortenedFileName) {
  const std::string name(253, 'x');
  startWeb(10, "uid-1", "default", name, "s1");
  const std::string file = launcher_.starts()[0].argv[6];
  EXPECT_THAT(file, AllOf(HasSubstr("/capture-xxxx"), ::testing::EndsWith(".pcap")));
  EXPECT_LE(file.size() - dir_.path().size() - 1 + 1, 255u);
  EXPECT_EQ(file, path(plainFileBase("default", name, 10)));
  EXPECT_THAT(events_.events()[0].message, HasSubstr("too long for a file name"));
}

TEST_F(ReconcilerTest, FailedLaunchIsReportedOnceAndRetriedWithBackoff) {
  launcher_.failStarts(absl::FailedPreconditionError("cannot enter the Pod's network namespace"));
  pods_.set(makePod("uid-1", "default", "web", "3"));
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  EXPECT_THAT(reconcile("uid-1"), Optional(1s));
  clock_.advance(1s);
  EXPECT_THAT(reconcile("uid-1"), Optional(2s));
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_THAT(failed[0].message, AllOf(HasSubstr("cannot start tcpdump in sandbox s1"),
                                       HasSubstr("network namespace")));
  launcher_.failStarts(absl::OkStatus());
  clock_.advance(2s);
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonFailed, kReasonStarted));
  EXPECT_EQ(reconciler_->stats().failed, 2u);
}

TEST_F(ReconcilerTest, PendingCaptureThatIsNoLongerWantedEndsSilently) {
  pods_.set(makePod("uid-1", "default", "web", "3"));
  reconcile("uid-1");  // no sandbox yet
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");
  EXPECT_THAT(events_.events(), IsEmpty());
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, StartUpDeletesEveryCaptureFileAndTakesTheWantedPodsOldestFirst) {
  pods_.set(makePod("uid-1", "default", "web", "2"));
  pods_.set(makePod("uid-2", "default", "db", std::nullopt));  // not wanted
  k8s::Pod older = makePod("uid-3", "team-a", "api", "1");
  older.creation_timestamp = "2026-11-22T09:00:00Z";
  pods_.set(older);
  pods_.set(makePod("uid-4", "team-b", "api", "1"));  // same name: who had which is unknown
  for (const char* name :
       {"capture-web.pcap0", "capture-web.pcap1", "capture-web.pcap7", "capture-db.pcap0",
        "capture-api.pcap", "capture-team-b_api.pcap", "capture-gone.pcap0", "unrelated.pcap0"}) {
    dir_.touch(name);
  }
  ASSERT_TRUE(reconciler_->startFresh().ok());
  EXPECT_THAT(dir_.names(), UnorderedElementsAre("unrelated.pcap0"))
      << "a wanted capture starts afresh too: its old files may be another Pod's";
  EXPECT_THAT(reconciler_->trackedPods(), UnorderedElementsAre("uid-1", "uid-3", "uid-4"));
  EXPECT_EQ(reconciler_->captures()[0].files, 2);

  // The oldest same-named Pod gets the plain name, whichever starts first.
  resolver_.set("uid-3", makeSandbox("s3", "/var/run/netns/cni-s3"));
  resolver_.set("uid-4", makeSandbox("s4", "/var/run/netns/cni-s4"));
  reconcile("uid-4");
  reconcile("uid-3");
  const auto starts = launcher_.starts();
  ASSERT_THAT(starts, SizeIs(2));
  EXPECT_EQ(starts[0].argv[6], path("capture-team-b_api.pcap"));
  EXPECT_EQ(starts[1].argv[6], path("capture-api.pcap"));
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonStarted, kReasonStarted));
}

TEST_F(ReconcilerTest, StartUpFailsOnAMissingDirectory) {
  CaptureOptions o = options();
  o.capture_dir = dir_.path() + "/missing";
  remake(o);
  EXPECT_FALSE(reconciler_->startFresh().ok());
}

TEST_F(ReconcilerTest, AStopIsASignalAndItsExitEndsTheCapture) {
  launcher_.ignoreSigterm(true);  // as a tcpdump stuck in a write would
  startWeb(3);
  dir_.touch("capture-web.pcap0");
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  // SIGTERM, then nothing to wait for but the grace period: the caller's timer.
  EXPECT_THAT(reconcile("uid-1"), Optional(5s));
  EXPECT_THAT(launcher_.signals(), ElementsAre(std::pair{1ul, SIGTERM}));
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kStopping);
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0")) << "tcpdump may still write";
  EXPECT_THAT(events_.withReason(kReasonStopped), IsEmpty());

  clock_.advance(2s);
  EXPECT_THAT(reconcile("uid-1"), Optional(3s)) << "an update in between changes nothing";
  clock_.advance(3s);
  reconcile("uid-1");  // the grace period is over: SIGKILL, and its exit ends the capture
  EXPECT_THAT(launcher_.signals(), ElementsAre(std::pair{1ul, SIGTERM}, std::pair{1ul, SIGKILL}));
  EXPECT_THAT(dir_.names(), IsEmpty());
  EXPECT_THAT(events_.withReason(kReasonStopped), SizeIs(1));
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, AProcessThatSurvivesSigkillIsWaitedForAndSaidSo) {
  launcher_.ignoreSigterm(true);
  startWeb(3);
  pods_.remove("uid-1");
  reconcile("uid-1");
  clock_.advance(5s);
  // SIGKILL, which the fake turns into an exit: take it back, as if the kernel held it.
  EXPECT_THAT(reconciler_->reconcile("uid-1"), Optional(5s));
  const std::vector<ProcessExit> late = launcher_.takeExits();
  ASSERT_THAT(late, SizeIs(1));
  clock_.advance(5s);
  EXPECT_EQ(reconciler_->reconcile("uid-1"), std::nullopt) << "waits for the exit";
  EXPECT_THAT(reconciler_->trackedPods(), ElementsAre("uid-1"));
  EXPECT_EQ(reconciler_->recordExit(late[0]), "uid-1");
  reconcile("uid-1");
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, ReannotatedWhileStoppingGetsANewCaptureOnlyOnceTheOldOneIsGone) {
  launcher_.ignoreSigterm(true);
  startWeb(3);
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");
  pods_.set(makePod("uid-1", "default", "web", "2"));  // wanted again, before tcpdump is gone
  EXPECT_THAT(reconcile("uid-1"), Optional(5s));
  EXPECT_THAT(launcher_.starts(), SizeIs(1)) << "two tcpdumps would write the same files";
  dir_.touch("capture-web.pcap2");
  const std::optional<std::string> pod =
      reconciler_->recordExit(launcher_.exit(1, ExitStatus{0, 0}, ""));
  ASSERT_EQ(pod, "uid-1");
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  // The old capture ended (its files and all), and a new one began.
  EXPECT_THAT(events_.reasons(), ElementsAre(kReasonStarted, kReasonStopped, kReasonStarted));
  EXPECT_THAT(dir_.names(), IsEmpty());
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_EQ(launcher_.starts()[1].argv[4], "2");
}

TEST_F(ReconcilerTest, ANewFileCountRestartsInTheBoundSandboxWithoutALookUp) {
  startWeb(3);
  EXPECT_EQ(resolver_.calls(), 1);
  resolver_.set("uid-1", cri::resolveError(cri::ResolveFailure::kRuntimeUnavailable, "frozen"));
  pods_.set(makePod("uid-1", "default", "web", "4"));
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_EQ(resolver_.calls(), 1) << "the runtime need not answer for a restart in place";
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_EQ(launcher_.starts()[1].netns_path, "/var/run/netns/cni-s1");
  EXPECT_EQ(launcher_.starts()[1].argv[4], "4");
}

TEST_F(ReconcilerTest, AResyncLooksUpOnlyTheCapturesWhoseSandboxChanged) {
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i);
    startWeb(1, "uid-" + n, "default", "web-" + n, "s" + n);
  }
  ASSERT_EQ(resolver_.calls(), 3);
  auto snapshot = resolver_.snapshot();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_THAT(reconciler_->checkBindings(*snapshot), IsEmpty());
  EXPECT_THAT(reconciler_->takeLookups(), IsEmpty());

  resolver_.set("uid-1", makeSandbox("s1-new", "/var/run/netns/cni-s1-new"));
  snapshot = resolver_.snapshot();
  EXPECT_THAT(reconciler_->checkBindings(*snapshot), ElementsAre("uid-1"));
  for (int i = 0; i < 3; ++i) reconcile("uid-" + std::to_string(i));
  EXPECT_EQ(resolver_.calls(), 4) << "one look-up, for the capture that moved";
  EXPECT_EQ(launcher_.starts().back().netns_path, "/var/run/netns/cni-s1-new");
}

TEST_F(ReconcilerTest, RetriesAreJitteredSoThatCapturesDoNotRetryInStep) {
  CaptureOptions o = options();
  o.backoff_jitter = 0.5;
  remake(o);
  launcher_.failStarts(absl::FailedPreconditionError("no netns"));
  std::set<Duration> first_delays;
  for (int i = 0; i < 20; ++i) {
    const std::string uid = "uid-" + std::to_string(i);
    pods_.set(makePod(uid, "default", "web-" + std::to_string(i), "1"));
    resolver_.set(uid, makeSandbox("s" + std::to_string(i), "/var/run/netns/cni"));
    const std::optional<Duration> delay = reconcile(uid);
    ASSERT_TRUE(delay.has_value());
    EXPECT_GE(*delay, 500ms);
    EXPECT_LE(*delay, 1s);
    first_delays.insert(*delay);
  }
  EXPECT_GT(first_delays.size(), 5u) << "20 captures retrying in step";
}

TEST_F(ReconcilerTest, ACrashLoopWhoseMessagesDifferOnlyInPidsIsReportedOnce) {
  startWeb(3);
  const Duration delays[] = {1s, 2s, 4s};
  for (int i = 0; i < 3; ++i) {
    exitOf(*launcher_.runningFor("uid-1"), {1, 0},
           absl::StrCat("tcpdump: pcap_loop: error on socket of pid ", 4000 + i, " (#", i, ")"));
    clock_.advance(delays[i]);
    reconcile("uid-1");
  }
  EXPECT_THAT(events_.withReason(kReasonFailed), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonRestarted), SizeIs(1));
}

TEST(SameFailure, IgnoresNumbersInTheDetailsAndIdsButNotTheExitStatus) {
  EXPECT_TRUE(sameFailure("tcpdump exited with status 1: error on pid 4001",
                          "tcpdump exited with status 1: error on pid 52"));
  EXPECT_FALSE(
      sameFailure("tcpdump exited with status 1: boom", "tcpdump exited with status 2: boom"));
  EXPECT_FALSE(sameFailure("tcpdump exited with status 1: boom",
                           "tcpdump killed by signal 9 (Killed): boom"));
  EXPECT_TRUE(sameFailure("cannot start tcpdump in sandbox 4bcd2d10936290d942: no netns",
                          "cannot start tcpdump in sandbox 9f00aa10936290ffff: no netns"));
  EXPECT_FALSE(sameFailure("tcpdump exited with status 1: device went down",
                           "tcpdump exited with status 1: permission denied"));
  EXPECT_FALSE(sameFailure("tcpdump exited with status 1: x", ""));
}

TEST_F(ReconcilerTest, SignalAllStopsEveryTcpdumpAndKeepsTheFiles) {
  startWeb(2, "uid-1", "default", "web", "s1");
  startWeb(2, "uid-2", "default", "db", "s2");
  dir_.touch("capture-web.pcap0");
  EXPECT_EQ(reconciler_->signalAll(SIGTERM), 2);
  EXPECT_EQ(reconciler_->processes(), 2) << "gone only once their exits are in";
  for (const ProcessExit& exit : launcher_.takeExits()) reconciler_->recordExit(exit);
  EXPECT_EQ(reconciler_->processes(), 0);
  EXPECT_THAT(launcher_.running(), IsEmpty());
  EXPECT_THAT(launcher_.stops(), UnorderedElementsAre(1u, 2u));
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0"));
  EXPECT_EQ(reconciler_->stats().active, 0);
}

}  // namespace
}  // namespace capture

namespace capture {
namespace {

TEST_F(ReconcilerTest, AFilterAndAPacketCountReachTcpdumpAfterItsOptions) {
  startWebWith({{kFilterAnnotation, "-w /etc/passwd or icmp"}});
  EXPECT_THAT(launcher_.starts(), IsEmpty()) << "a filter that does not compile starts nothing";
  ASSERT_THAT(events_.withReason(kReasonInvalidAnnotation), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonInvalidAnnotation)[0].message,
              AllOf(HasSubstr("tcpdump.antrea.io/filter"), HasSubstr("syntax error"),
                    HasSubstr("no capture runs")));

  k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pod.annotations[kFilterAnnotation] = "tcp port 443 and host 10.0.0.7";
  pod.annotations[kPacketsAnnotation] = "20";
  pods_.set(pod);
  reconcile("uid-1");
  ASSERT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_THAT(launcher_.starts()[0].argv,
              ElementsAre("/usr/bin/tcpdump", "-C", "1", "-W", "2", "-w", path("capture-web.pcap"),
                          "-Z", "root", "-U", "-c", "20", "--", "tcp port 443 and host 10.0.0.7"));
  EXPECT_THAT(
      events_.withReason(kReasonStarted)[0].message,
      AllOf(HasSubstr("filter \"tcp port 443 and host 10.0.0.7\""), HasSubstr("up to 20 packets")));
  EXPECT_EQ(toJson(reconciler_->captures()[0])["packetLimit"], 20);
}

TEST_F(ReconcilerTest, AnInvalidBoundStartsNothingAndSaysWhy) {
  startWebWith({{kDurationAnnotation, "5 minutes"}});
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  ASSERT_THAT(events_.withReason(kReasonInvalidAnnotation), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonInvalidAnnotation)[0].message,
              HasSubstr("tcpdump.antrea.io/duration \"5 minutes\" is not a duration"));
}

TEST_F(ReconcilerTest, AChangedFilterRestartsTheCaptureAndDeletesItsFiles) {
  startWebWith({{kFilterAnnotation, "icmp"}});
  ASSERT_THAT(launcher_.starts(), SizeIs(1));
  dir_.touch("capture-web.pcap0");
  k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pod.annotations[kFilterAnnotation] = "udp";
  pods_.set(pod);
  reconcile("uid-1");
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_EQ(launcher_.starts()[1].argv.back(), "udp");
  EXPECT_THAT(dir_.names(), IsEmpty());
  ASSERT_THAT(events_.withReason(kReasonRestarted), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonRestarted)[0].message, HasSubstr("the filter changed"));
}

TEST_F(ReconcilerTest, APacketCountReachedCompletesTheCaptureAndKeepsItsFiles) {
  startWebWith({{kPacketsAnnotation, "20"}});
  dir_.touch("capture-web.pcap0");
  const std::optional<Duration> again =
      exitOf(1, ExitStatus{0, 0},
             "tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 "
             "bytes\n20 packets captured\n23 packets received by filter\n0 packets dropped by "
             "kernel\n");
  EXPECT_EQ(again, std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1)) << "a completed capture is not started again";
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0"));
  ASSERT_THAT(events_.withReason(kReasonCompleted), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonCompleted)[0].message,
              AllOf(HasSubstr("the packet count of 20 was reached"),
                    HasSubstr("20 packets captured, 23 received by filter, 0 dropped by kernel"),
                    HasSubstr(path("capture-web.pcap0"))));
  EXPECT_THAT(events_.withReason(kReasonFailed), IsEmpty());
  const CaptureStatus status = reconciler_->captures()[0];
  EXPECT_EQ(status.state, CaptureState::kCompleted);
  ASSERT_TRUE(status.counts.has_value());
  EXPECT_EQ(status.counts->captured, 20u);
  EXPECT_EQ(reconciler_->stats().active, 0);

  // Looked at again (a resync, an update): still done.
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1));

  // The annotation removed: the files go, as for any capture.
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");
  EXPECT_THAT(dir_.allNames(), IsEmpty()) << "its saved state goes with its files";
  ASSERT_THAT(events_.withReason(kReasonStopped), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonStopped)[0].message, HasSubstr("20 packets captured"));
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, ADurationReachedStopsTcpdumpAndCompletesTheCapture) {
  startWebWith({{kDurationAnnotation, "90s"}});
  ASSERT_THAT(launcher_.starts(), SizeIs(1));
  dir_.touch("capture-web.pcap0");
  clock_.advance(30s);
  EXPECT_THAT(reconcile("uid-1"), Optional(60s)) << "comes back when the duration ends";
  clock_.advance(60s);
  reconcile("uid-1");  // SIGTERM; the fake's tcpdump exits at once
  EXPECT_THAT(launcher_.signals(), ElementsAre(std::pair{1ul, SIGTERM}));
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kCompleted);
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0"));
  ASSERT_THAT(events_.withReason(kReasonCompleted), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonCompleted)[0].message,
              HasSubstr("the duration of 90s was reached"));

  // A new bound is a new capture: the old files go, tcpdump starts again.
  k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pod.annotations[kDurationAnnotation] = "5m";
  pods_.set(pod);
  reconcile("uid-1");
  EXPECT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_THAT(dir_.names(), IsEmpty());
  EXPECT_THAT(events_.withReason(kReasonRestarted)[0].message, HasSubstr("the duration changed"));
}

TEST_F(ReconcilerTest, ATcpdumpStoppedForARemovalIsNotACompletion) {
  startWebWith({{kPacketsAnnotation, "20"}});
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");  // SIGTERM: tcpdump exits 0, as it does on SIGTERM
  EXPECT_THAT(events_.withReason(kReasonCompleted), IsEmpty());
  EXPECT_THAT(events_.withReason(kReasonStopped), SizeIs(1));
  EXPECT_THAT(reconciler_->trackedPods(), IsEmpty());
}

TEST_F(ReconcilerTest, ANewSpecWhileCompletingIsARestartNotACompletion) {
  launcher_.ignoreSigterm(true);
  startWebWith({{kDurationAnnotation, "10s"}});
  clock_.advance(10s);
  reconcile("uid-1");  // the duration is over: SIGTERM, and tcpdump takes its time
  k8s::Pod pod = makePod("uid-1", "default", "web", "2");
  pod.annotations[kDurationAnnotation] = "20s";
  pods_.set(pod);
  reconcile("uid-1");
  reconciler_->recordExit(launcher_.exit(1, ExitStatus{0, 0}, ""));
  reconcile("uid-1");
  EXPECT_THAT(events_.withReason(kReasonCompleted), IsEmpty());
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kRunning);
  EXPECT_THAT(events_.withReason(kReasonRestarted)[0].message, HasSubstr("the duration changed"));
}

// What the worker does at every resync, and with what tcpdump writes to stderr.
class ReconcilerCountsTest : public ReconcilerTest {
 protected:
  static constexpr char kBanner[] =
      "tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n";
  bool output(ProcessId id, std::string text) {
    return reconciler_->recordOutput(launcher_.output(id, std::move(text)));
  }
  std::vector<ProcessId> askedForCounts() const {
    std::vector<ProcessId> asked;
    for (const auto& [id, signal] : launcher_.signals()) {
      if (signal == SIGUSR1) asked.push_back(id);
    }
    return asked;
  }
  static std::string summary(uint64_t captured, uint64_t received, uint64_t dropped) {
    return absl::StrCat("tcpdump: ", captured, " packets captured, ", received,
                        " packets received by filter, ", dropped, " packets dropped by kernel\n");
  }
};

TEST_F(ReconcilerCountsTest, TcpdumpIsAskedForItsCountsOnlyOnceItListens) {
  startWeb(3);
  reconciler_->refreshCounts();
  EXPECT_THAT(askedForCounts(), IsEmpty())
      << "before its banner, SIGUSR1 would kill tcpdump: its handler is not set yet";
  EXPECT_FALSE(output(1, "tcpdump: listening on eth0, link-type EN10MB "));
  reconciler_->refreshCounts();
  EXPECT_THAT(askedForCounts(), IsEmpty()) << "half a banner is not one";
  EXPECT_FALSE(output(1, "(Ethernet), snapshot length 262144 bytes\n"));
  reconciler_->refreshCounts();
  EXPECT_THAT(askedForCounts(), ElementsAre(1));
  EXPECT_TRUE(launcher_.running().contains(1)) << "SIGUSR1 is no stop";
}

TEST_F(ReconcilerCountsTest, ReportsUpdateTheCaptureAndAddTheirGrowthToTheTotals) {
  startWeb(3);
  ASSERT_FALSE(output(1, kBanner));
  EXPECT_EQ(reconciler_->captures()[0].counts, std::nullopt);
  const std::string first = summary(5, 7, 0);
  EXPECT_FALSE(output(1, first.substr(0, 20))) << "a report is read once its line is whole";
  EXPECT_TRUE(output(1, first.substr(20)));
  EXPECT_EQ(reconciler_->captures()[0].counts,
            (TcpdumpCounts{.captured = 5, .received_by_filter = 7}));
  EXPECT_TRUE(output(1, summary(12, 15, 0)));
  EXPECT_EQ(reconciler_->captures()[0].counts->captured, 12u);
  EXPECT_EQ(reconciler_->stats().packets.captured, 12u) << "growth, not the sum of reports";
  EXPECT_EQ(reconciler_->stats().packets.received_by_filter, 15u);
  EXPECT_FALSE(output(1, "tcpdump: some warning\n"));

  // tcpdump dies; its last report (at exit) is added, and a new tcpdump counts from 0.
  exitOf(1, ExitStatus{1, 0},
         "20 packets captured\n24 packets received by filter\n"
         "0 packets dropped by kernel\ntcpdump: some error\n");
  clock_.advance(1s);
  reconcile("uid-1");
  ASSERT_TRUE(launcher_.runningFor("uid-1").has_value());
  const ProcessId second = *launcher_.runningFor("uid-1");
  EXPECT_EQ(reconciler_->captures()[0].counts, std::nullopt);
  ASSERT_TRUE(output(second, std::string(kBanner) + summary(3, 3, 0)));
  EXPECT_EQ(reconciler_->stats().packets.captured, 23u) << "20 from the first tcpdump, 3 now";
  EXPECT_FALSE(reconciler_->recordOutput(proc::ProcessOutput{1, "uid-1", summary(99, 99, 0)}))
      << "the first tcpdump's output no longer counts";
}

TEST_F(ReconcilerCountsTest, TheBytesOnDiskAreMeasuredAtEachResync) {
  startWeb(3);
  dir_.touch("capture-web.pcap0", std::string(1000, 'x'));
  dir_.touch("capture-web.pcap1", std::string(24, 'x'));
  dir_.touch("capture-web-1.pcap0", std::string(99, 'x'));  // the Pod web-1's
  EXPECT_EQ(reconciler_->captures()[0].bytes_on_disk, 0u);
  reconciler_->refreshCounts();
  EXPECT_EQ(reconciler_->captures()[0].bytes_on_disk, 1024u);
}

TEST_F(ReconcilerCountsTest, TheFirstKernelDropsOfACaptureGetOneWarning) {
  startWeb(3);
  ASSERT_TRUE(output(1, std::string(kBanner) + summary(100, 100, 0)));
  EXPECT_THAT(events_.withReason(kReasonPacketsDropped), IsEmpty());
  ASSERT_TRUE(output(1, summary(150, 190, 40)));
  ASSERT_TRUE(output(1, summary(200, 300, 100)));
  ASSERT_THAT(events_.withReason(kReasonPacketsDropped), SizeIs(1));
  const testing::RecordedEvent warning = events_.withReason(kReasonPacketsDropped)[0];
  EXPECT_EQ(warning.type, k8s::EventType::kWarning);
  EXPECT_THAT(warning.message,
              AllOf(HasSubstr("The kernel dropped 40 packets"),
                    HasSubstr("150 packets captured, 190 received by filter, 40 dropped by kernel"),
                    HasSubstr(kFilterAnnotation)));
  EXPECT_EQ(reconciler_->stats().packets.dropped_by_kernel, 100u);

  // The Stopped Event carries the last counts, and the bytes the files held.
  dir_.touch("capture-web.pcap0", std::string(2048, 'x'));
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");
  ASSERT_THAT(events_.withReason(kReasonStopped), SizeIs(1));
  EXPECT_THAT(
      events_.withReason(kReasonStopped)[0].message,
      AllOf(HasSubstr("200 packets captured, 300 received by filter, 100 dropped by kernel"),
            HasSubstr("2048 bytes on disk")));

  // Another capture of the Pod is told of its own first drops.
  startWeb(3);
  const ProcessId next = *launcher_.runningFor("uid-1");
  ASSERT_TRUE(output(next, std::string(kBanner) + summary(10, 12, 2)));
  EXPECT_THAT(events_.withReason(kReasonPacketsDropped), SizeIs(2));
}

// A controller restart: a new Reconciler on the same directory, Pods, runtime and clock.
class ReconcilerRestartTest : public ReconcilerTest {
 protected:
  void restartController() {
    // Its tcpdumps die with it (PR_SET_PDEATHSIG); nobody is left to hear of it.
    for (const auto& [id, spec] : launcher_.running())
      launcher_.exit(id, ExitStatus{-1, SIGKILL}, "");
    remake();
    ASSERT_TRUE(reconciler_->startFresh().ok());
  }
  std::vector<std::string> argvOfStart(size_t i) const { return launcher_.starts().at(i).argv; }
  static std::string valueAfter(const std::vector<std::string>& argv, const std::string& flag) {
    auto it = std::find(argv.begin(), argv.end(), flag);
    return it == argv.end() || it + 1 == argv.end() ? "" : *(it + 1);
  }
};

TEST_F(ReconcilerRestartTest, ACompletedCaptureKeepsItsFilesAndStateAndIsNotStartedAgain) {
  startWebWith({{kPacketsAnnotation, "20"}});
  dir_.touch("capture-web.pcap0", std::string(100, 'x'));
  exitOf(1, ExitStatus{0, 0},
         "20 packets captured\n23 packets received by filter\n0 packets dropped by kernel\n");
  ASSERT_EQ(reconciler_->captures()[0].state, CaptureState::kCompleted);
  dir_.touch("capture-gone.pcap0");  // a capture whose Pod is gone

  restartController();
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0"));
  ASSERT_THAT(reconciler_->captures(), SizeIs(1));
  const CaptureStatus status = reconciler_->captures()[0];
  EXPECT_EQ(status.state, CaptureState::kCompleted);
  EXPECT_EQ(status.counts, (TcpdumpCounts{.captured = 20, .received_by_filter = 23}));
  EXPECT_EQ(status.bytes_on_disk, 100u);
  EXPECT_EQ(status.sandbox_id, "s1");
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1)) << "done is done";
  EXPECT_THAT(events_.withReason(kReasonCompleted), SizeIs(1)) << "nothing new to tell";

  // Removing the annotation still deletes everything.
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");
  EXPECT_THAT(dir_.allNames(), IsEmpty());
  ASSERT_THAT(events_.withReason(kReasonStopped), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonStopped)[0].message,
              HasSubstr("deleted " + path("capture-web.pcap0")));
}

TEST_F(ReconcilerRestartTest, ABoundedCaptureGoesOnWithTheTimeItHasLeftAndKeepsItsFiles) {
  startWebWith({{kDurationAnnotation, "90s"}});
  dir_.touch("capture-web.pcap0");
  clock_.advance(30s);
  // The controller dies (its tcpdump with it: PR_SET_PDEATHSIG) and comes back.
  restartController();
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0"));
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kPending);
  EXPECT_THAT(reconcile("uid-1"), Optional(60s)) << "the time left, not the whole duration";
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0")) << "the same capture goes on";
  ASSERT_THAT(events_.withReason(kReasonRestarted), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonRestarted)[0].message,
              AllOf(HasSubstr("the controller restarted"), HasSubstr("60s of its 90s left"),
                    HasSubstr("files kept")));

  // A second restart, 50 s later: 10 s left.
  clock_.advance(50s);
  restartController();
  EXPECT_THAT(reconcile("uid-1"), Optional(10s));
  clock_.advance(10s);
  reconcile("uid-1");  // SIGTERM; its exit completes the capture
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kCompleted);
  ASSERT_THAT(events_.withReason(kReasonCompleted), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonCompleted)[0].message,
              HasSubstr("the duration of 90s was reached"));
}

TEST_F(ReconcilerRestartTest, AShutdownIsNoCompletionAndTheCaptureGoesOnAfterIt) {
  startWebWith({{kPacketsAnnotation, "100"}});
  // SIGTERM at shutdown: tcpdump -c exits 0 with its counts, as it does when its bound is met.
  reconciler_->signalAll(SIGTERM);
  for (ProcessExit exit : launcher_.takeExits()) {
    exit.stderr_tail =
        "30 packets captured\n30 packets received by filter\n0 packets dropped by kernel\n";
    reconciler_->recordExit(exit);
  }
  EXPECT_THAT(events_.withReason(kReasonCompleted), IsEmpty());
  restartController();
  reconcile("uid-1");
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_EQ(valueAfter(argvOfStart(1), "-c"), "70");
}

TEST_F(ReconcilerRestartTest, ADurationThatEndedWhileTheControllerWasDownCompletesAtOnce) {
  startWebWith({{kDurationAnnotation, "90s"}});
  dir_.touch("capture-web.pcap0");
  clock_.advance(2min);
  restartController();
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1)) << "no tcpdump for no time left";
  EXPECT_EQ(reconciler_->captures()[0].state, CaptureState::kCompleted);
  EXPECT_THAT(dir_.names(), ElementsAre("capture-web.pcap0"));
  ASSERT_THAT(events_.withReason(kReasonCompleted), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonCompleted)[0].message,
              HasSubstr("the duration of 90s was reached"));
}

TEST_F(ReconcilerRestartTest, APacketBoundGoesOnWithThePacketsLeft) {
  startWebWith({{kPacketsAnnotation, "100"}});
  EXPECT_EQ(valueAfter(argvOfStart(0), "-c"), "100");
  reconciler_->recordOutput(launcher_.output(
      1,
      "tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
      "tcpdump: 40 packets captured, 40 packets received by filter, 0 packets dropped by "
      "kernel\n"));
  restartController();
  reconcile("uid-1");
  ASSERT_THAT(launcher_.starts(), SizeIs(2));
  EXPECT_EQ(valueAfter(argvOfStart(1), "-c"), "60");
  EXPECT_THAT(events_.withReason(kReasonRestarted)[0].message, HasSubstr("60 of its 100 packets"));

  // The same within one controller: a tcpdump that dies goes on with the packets left.
  const ProcessId second = *launcher_.runningFor("uid-1");
  exitOf(second, ExitStatus{1, 0},
         "10 packets captured\n10 packets received by filter\n0 packets dropped by kernel\n");
  clock_.advance(2s);
  reconcile("uid-1");
  ASSERT_THAT(launcher_.starts(), SizeIs(3));
  EXPECT_EQ(valueAfter(argvOfStart(2), "-c"), "50");
}

TEST_F(ReconcilerRestartTest, ACaptureWhosePodChangedOrHasNoBoundStartsAfresh) {
  startWebWith({{kDurationAnnotation, "90s"}});
  startWeb(3, "uid-2", "default", "db", "s2");  // unbounded
  dir_.touch("capture-web.pcap0");
  dir_.touch("capture-db.pcap0");
  k8s::Pod web = makePod("uid-1", "default", "web", "2");
  web.annotations[kDurationAnnotation] = "5m";  // changed while the controller was down
  pods_.set(web);
  restartController();
  EXPECT_THAT(dir_.allNames(), IsEmpty());
  EXPECT_THAT(reconciler_->trackedPods(), UnorderedElementsAre("uid-1", "uid-2"));
  reconcile("uid-1");
  reconcile("uid-2");
  EXPECT_THAT(launcher_.starts(), SizeIs(4));
  EXPECT_THAT(events_.withReason(kReasonRestarted), IsEmpty()) << "new captures, told as such";
}

TEST_F(ReconcilerRestartTest, UnreadableSavedCapturesAreSkippedAndTheStartGoesOn) {
  startWebWith({{kDurationAnnotation, "90s"}});
  dir_.touch(".capture-db.pcap.state", "{not json");
  ASSERT_EQ(::mkdir(dir_.file(".capture-dir.pcap.state").c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo(dir_.file(".capture-fifo.pcap.state").c_str(), 0600), 0);
  ASSERT_EQ(::symlink("/etc/passwd", dir_.file(".capture-link.pcap.state").c_str()), 0);
  restartController();
  EXPECT_THAT(reconciler_->trackedPods(), ElementsAre("uid-1")) << "the readable one goes on";
  EXPECT_THAT(dir_.allNames(),
              UnorderedElementsAre(".capture-web.pcap.state", ".capture-dir.pcap.state",
                                   ".capture-fifo.pcap.state", ".capture-link.pcap.state"))
      << "the unreadable file deleted; what is no regular file is not ours to remove";
  EXPECT_TRUE(std::filesystem::exists("/etc/passwd"));
}

TEST_F(ReconcilerTest, ADirectoryNamedLikeACaptureFileIsSkippedNotACrashLoop) {
  testing::TempDir outside;
  outside.touch("target", "untouched");
  pods_.set(makePod("uid-1", "default", "web", "3"));
  pods_.set(makePod("uid-2", "default", "db", "1"));
  ASSERT_EQ(::mkdir(dir_.file("capture-web.pcap0").c_str(), 0700), 0);  // where web writes
  ASSERT_EQ(::mkdir(dir_.file("capture-old.pcap1").c_str(), 0700), 0);
  ASSERT_EQ(::mkfifo(dir_.file("capture-fifo.pcap").c_str(), 0600), 0);
  ASSERT_EQ(::symlink(outside.file("target").c_str(), dir_.file("capture-link.pcap0").c_str()), 0);
  dir_.touch("capture-gone.pcap0");
  const absl::Status started = reconciler_->startFresh();
  ASSERT_TRUE(started.ok()) << started << ": an error here is a crash loop";
  EXPECT_THAT(dir_.names(), UnorderedElementsAre("capture-web.pcap0", "capture-old.pcap1",
                                                 "capture-fifo.pcap", "capture-link.pcap0"));
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");
  EXPECT_THAT(reconciler_->trackedPods(), UnorderedElementsAre("uid-1", "uid-2"));

  // The other captures start; the one whose file is a directory fails, and says why.
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  resolver_.set("uid-2", makeSandbox("s2", "/var/run/netns/cni-s2"));
  EXPECT_EQ(reconcile("uid-2"), std::nullopt);
  EXPECT_THAT(reconcile("uid-1"), Optional(1s));
  ASSERT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_EQ(launcher_.starts()[0].owner, "uid-2");
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(1));
  EXPECT_THAT(failed[0].message,
              AllOf(HasSubstr(path("capture-web.pcap0")), HasSubstr("is a directory")));

  // The Pod's capture ends: what is not its file stays, and that is no failure either.
  pods_.set(makePod("uid-1", "default", "web", std::nullopt));
  reconcile("uid-1");
  EXPECT_THAT(reconciler_->trackedPods(), ElementsAre("uid-2"));
  EXPECT_TRUE(std::filesystem::is_directory(dir_.file("capture-web.pcap0")));
}

TEST_F(ReconcilerTest, ALinkPlantedWhereTcpdumpWritesFailsTheCaptureAndIsNotFollowed) {
  testing::TempDir outside;
  outside.touch("target", "untouched");
  ASSERT_EQ(::symlink(outside.file("target").c_str(), dir_.file("capture-web.pcap2").c_str()), 0);
  pods_.set(makePod("uid-1", "default", "web", "3"));
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  EXPECT_THAT(reconcile("uid-1"), Optional(1s));
  clock_.advance(1s);
  EXPECT_THAT(reconcile("uid-1"), Optional(2s));
  EXPECT_THAT(launcher_.starts(), IsEmpty()) << "tcpdump would write through the link";
  const auto failed = events_.withReason(kReasonFailed);
  ASSERT_THAT(failed, SizeIs(1)) << "the same failure is reported once";
  EXPECT_THAT(failed[0].message,
              AllOf(HasSubstr(path("capture-web.pcap2")),
                    HasSubstr("is a symbolic link: refusing to let tcpdump write through it")));
  EXPECT_THAT(reconciler_->captures()[0].last_error, HasSubstr("symbolic link"));
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");

  // A hard link is refused too: tcpdump would write into the file it shares.
  ASSERT_EQ(::unlink(dir_.file("capture-web.pcap2").c_str()), 0);
  ASSERT_EQ(::link(outside.file("target").c_str(), dir_.file("capture-web.pcap2").c_str()), 0);
  clock_.advance(2s);
  EXPECT_THAT(reconcile("uid-1"), Optional(4s));
  EXPECT_THAT(events_.withReason(kReasonFailed).back().message, HasSubstr("2 links"));
  EXPECT_THAT(launcher_.starts(), IsEmpty());

  // Once it is gone, the capture starts.
  ASSERT_EQ(::unlink(dir_.file("capture-web.pcap2").c_str()), 0);
  clock_.advance(4s);
  EXPECT_EQ(reconcile("uid-1"), std::nullopt);
  EXPECT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_EQ(testsupport::readFile(outside.file("target")), "untouched");
}

TEST_F(ReconcilerTest, AStaticPodIsFoundByTheUidItsMirrorPodNames) {
  // The kubelet labels a static Pod's sandbox with the manifest's UID; the API server's mirror
  // Pod has a UID of its own and names the static one in kubernetes.io/config.mirror.
  k8s::Pod mirror = makePod("mirror-uid", "kube-system", "etcd-node-1", "2");
  mirror.annotations[k8s::kMirrorPodAnnotation] = "static-uid";
  pods_.set(mirror);
  resolver_.set("static-uid", makeSandbox("s-static", "/var/run/netns/cni-static"));
  reconcile("mirror-uid");
  ASSERT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_EQ(launcher_.starts()[0].netns_path, "/var/run/netns/cni-static");
  EXPECT_EQ(launcher_.starts()[0].owner, "mirror-uid") << "the capture is the mirror Pod's";
  auto snapshot = resolver_.snapshot();
  ASSERT_TRUE(snapshot.ok());
  EXPECT_THAT(reconciler_->checkBindings(*snapshot), IsEmpty()) << "its binding holds";
  EXPECT_THAT(events_.withReason(kReasonPending), IsEmpty());
}

TEST_F(ReconcilerTest, ACaptureWithNoReadySandboxForAMinuteGetsOneWarningSayingWhatIsMissing) {
  pods_.set(makePod("uid-1", "default", "web", "2"));  // no sandbox in the runtime
  std::optional<Duration> again = reconcile("uid-1");
  for (int i = 0; i < 40 && again; ++i) {
    clock_.advance(*again);
    again = reconcile("uid-1");
  }
  EXPECT_THAT(launcher_.starts(), IsEmpty());
  ASSERT_THAT(events_.withReason(kReasonPending), SizeIs(1)) << "once, not every 2 s";
  const testing::RecordedEvent warning = events_.withReason(kReasonPending)[0];
  EXPECT_EQ(warning.type, k8s::EventType::kWarning);
  EXPECT_THAT(warning.message,
              AllOf(HasSubstr("for 60s"), HasSubstr("io.kubernetes.pod.uid=uid-1"),
                    HasSubstr("no sandbox for this pod"), HasSubstr(k8s::kMirrorPodAnnotation)));

  // Its sandbox comes: the capture starts, and nothing more is said of the wait.
  resolver_.set("uid-1", makeSandbox("s1", "/var/run/netns/cni-s1"));
  clock_.advance(2s);
  reconcile("uid-1");
  EXPECT_THAT(launcher_.starts(), SizeIs(1));
  EXPECT_THAT(events_.withReason(kReasonPending), SizeIs(1));
}

}  // namespace
}  // namespace capture

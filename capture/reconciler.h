#pragma once

#include <sys/types.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "capture/annotation.h"
#include "capture/capture_files.h"
#include "capture/tcpdump.h"
#include "cri/sandbox_resolver.h"
#include "k8s/event_sink.h"
#include "k8s/pod.h"
#include "proc/process_launcher.h"

namespace capture {

// Event reasons, as `kubectl describe pod` shows them.
inline constexpr char kReasonStarted[] = "CaptureStarted";
inline constexpr char kReasonStopped[] = "CaptureStopped";
inline constexpr char kReasonRestarted[] = "CaptureRestarted";
inline constexpr char kReasonFailed[] = "CaptureFailed";
inline constexpr char kReasonInvalidAnnotation[] = "InvalidCaptureAnnotation";

struct CaptureOptions {
  std::string node_name;  // captures only Pods whose spec.nodeName is this
  std::string capture_dir = "/";
  int max_files = kDefaultMaxCaptureFiles;
  TcpdumpCommand tcpdump;  // from probeTcpdump() in production
  base::Duration resync_period = std::chrono::seconds(10);
  base::Duration sandbox_retry = std::chrono::seconds(2);  // a Pod whose sandbox is not READY yet
  base::Duration backoff_initial = std::chrono::seconds(1);
  base::Duration backoff_max = std::chrono::minutes(5);
  base::Duration stable_after = std::chrono::minutes(1);  // a tcpdump that ran this long starts its
                                                          // next backoff from the beginning
  base::Duration stop_grace = std::chrono::seconds(5);    // SIGTERM to SIGKILL
};

enum class CaptureState {
  kPending,  // wanted, waiting for a READY sandbox
  kRunning,  // tcpdump runs
  kBackoff,  // tcpdump failed or exited; retried at a later time
};
const char* toString(CaptureState state);

// One capture as a status page or /metrics would show it.
struct CaptureStatus {
  std::string pod_uid;
  std::string pod_namespace;
  std::string pod_name;
  CaptureState state = CaptureState::kPending;
  int files = 0;
  std::string file_path;  // <dir>/<base>; tcpdump appends the rotation index
  std::string sandbox_id;
  std::string netns_path;
  pid_t pid = 0;
  uint64_t restarts = 0;
  std::string last_error;
};
nlohmann::json toJson(const CaptureStatus& status);

struct CaptureStats {
  int64_t active = 0;     // captures whose tcpdump runs now
  uint64_t started = 0;   // successful tcpdump launches, restarts included
  uint64_t stopped = 0;   // captures ended, their files deleted
  uint64_t failed = 0;    // failed launches, sandbox look-ups and unexpected tcpdump exits
  uint64_t restarts = 0;  // launches that replaced an earlier tcpdump of the same capture
};

// Decides and acts, for one Pod UID at a time, like a Kubernetes controller's reconcile: what
// the Pod wants (from the informer's cache: this node, not terminating or finished, not
// hostNetwork, a valid tcpdump.antrea.io=N) against what this node runs for it (its record:
// sandbox ID, netns, N, tcpdump process, file base, backoff), then the difference:
//  - wanted, nothing runs:        resolve the sandbox, start tcpdump           CaptureStarted
//  - no longer wanted:            stop tcpdump, delete its files               CaptureStopped
//  - another sandbox is READY, or N changed, or the Pod was recreated under the same name:
//                                 stop, delete, start in the new netns         CaptureRestarted
//  - tcpdump exited by itself:    restart after a capped exponential backoff   CaptureFailed,
//                                                                              CaptureRestarted
//    (unless its sandbox went away with it: then it is a sandbox change, told as one)
//  - sandbox not READY yet:       look again after sandbox_retry, silently
//  - runtime unreachable, start failed: retry with backoff                     CaptureFailed
//  - invalid annotation / hostNetwork Pod: nothing runs  InvalidCaptureAnnotation / CaptureFailed
// Each outcome is one Event: a failure that repeats unchanged through retries is reported
// once (for tcpdump's exits: the same status and error lines, see tcpdumpErrorLines()). File names
// and name collisions: see capture_files.h. A stop deletes the capture's files, and so does a
// restart for a new sandbox, N or UID (the files would mix two captures); a restart after
// tcpdump's own exit keeps them (tcpdump rewrites them in turn). A controller's start deletes
// every capture file it finds (startFresh()).
//
// Not thread-safe, by design: one worker thread (the CaptureWorker's) owns it and all capture
// state. It forks tcpdump from that thread too, which keeps PR_SET_PDEATHSIG meaningful.
class Reconciler {
 public:
  Reconciler(CaptureOptions options, cri::SandboxResolver& resolver, k8s::PodLister& pods,
             k8s::EventSink& events, proc::ProcessLauncher& launcher, const base::Clock& clock);

  // Returns when to look at this Pod again; nullopt: on its next change or the next resync.
  std::optional<base::Duration> reconcile(const std::string& pod_uid);

  // A tcpdump ended by itself (from proc::ProcessLauncher's exit handler, via the worker). Exits of
  // processes the record no longer holds are ignored.
  void recordExit(const proc::ProcessExit& exit);

  // At start-up, before any capture runs: deletes every capture file in the directory (what
  // an earlier run left: no tcpdump of ours writes them any more, and a restarted controller
  // container starts without them anyway), then takes a record for every Pod that wants a
  // capture, oldest first, so that of two same-named Pods the older one gets the plain file
  // name whatever order their reconciles run in. Their captures start afresh.
  absl::Status startFresh();

  // At shutdown: stops every tcpdump cleanly. Files stay until the next start deletes them.
  void stopAll();

  std::vector<std::string> trackedPods() const;
  std::vector<CaptureStatus> captures() const;
  CaptureStats stats() const;

 private:
  enum class NextStart { kAnnounce, kAnnounceRestart, kQuiet };
  struct Record {
    k8s::ObjectReference pod;
    std::string file_base;
    std::string file_note;  // why the name is not capture-<pod>.pcap, for the Event
    int files = 0;
    CaptureState state = CaptureState::kPending;
    std::optional<proc::ProcessId> process;
    pid_t pid = 0;
    base::TimePoint started_at;
    std::string sandbox_id;  // the sandbox the capture is bound to: where tcpdump runs, or
                             // where its next start goes; empty until its first start
    std::string netns_path;
    base::Backoff backoff{base::Duration(1), base::Duration(1), 0};  // set by createRecord()
    base::TimePoint retry_at;
    std::string last_failure_reported;
    NextStart next_start = NextStart::kAnnounce;
    std::string restart_reason;
    uint64_t restarts = 0;
    std::string last_error;

    // Only a start binds a capture to a sandbox.
    bool everStarted() const { return !sandbox_id.empty(); }
  };
  struct Desire {
    bool wanted = false;
    int files = 0;
    std::string why_not;
    std::string notice_reason;  // a Warning to show once while the Pod stays like this
    std::string notice;
  };
  using Records = std::map<std::string, Record>;

  Desire desireOf(const std::string& pod_uid, const std::optional<k8s::Pod>& pod) const;
  void noticeOnce(const std::string& pod_uid, const std::optional<k8s::Pod>& pod,
                  const Desire& desire);
  absl::StatusOr<Records::iterator> createRecord(const k8s::Pod& pod);
  // The record whose capture writes this file base, if any. A scan: a node has at most a few
  // hundred captures, and names are chosen only when a capture begins.
  const Record* holderOf(const std::string& file_base) const;
  std::optional<base::Duration> ensureRunning(Record& record, int files);
  std::optional<base::Duration> untilRetry(const Record& record) const;
  std::optional<base::Duration> onResolveFailure(Record& record, const absl::Status& status);
  std::optional<base::Duration> launch(Record& record, const cri::SandboxInfo& sandbox);
  // Before a start that replaces the capture (new sandbox or N): stops tcpdump, deletes the old
  // files, binds the record to `sandbox`, starts the backoff afresh and announces the restart.
  void prepareRestart(Record& record, const cri::SandboxInfo& sandbox, std::string why);
  // After tcpdump's exit: whether the sandbox it captured is no longer the Pod's READY one.
  bool sandboxWentAway(const Record& record);
  base::Duration fail(Record& record, const std::string& message);
  void endCapture(Records::iterator it, const std::string& why);
  void stopProcess(Record& record);
  std::string deleteFiles(const Record& record);
  std::string describeCapture(const Record& record) const;
  void emit(const k8s::ObjectReference& pod, k8s::EventType type, const char* reason,
            const std::string& message);

  const CaptureOptions options_;
  cri::SandboxResolver& resolver_;
  k8s::PodLister& pods_;
  k8s::EventSink& events_;
  proc::ProcessLauncher& launcher_;
  const base::Clock& clock_;
  const CaptureFiles files_;

  Records records_;                             // by Pod UID
  std::map<std::string, std::string> notices_;  // Pod UID -> last Warning shown
  std::set<std::string> host_network_pods_;     // UIDs the runtime says are hostNetwork
  CaptureStats stats_;
};

}  // namespace capture

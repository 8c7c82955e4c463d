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
#include "capture/saved_capture.h"
#include "capture/tcpdump.h"
#include "capture/tcpdump_stats.h"
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
inline constexpr char kReasonCompleted[] = "CaptureCompleted";
inline constexpr char kReasonPacketsDropped[] = "CapturePacketsDropped";
inline constexpr char kReasonPending[] = "CapturePending";

struct CaptureOptions {
  std::string node_name;  // captures only Pods whose spec.nodeName is this
  std::string capture_dir = "/";
  int max_files = kDefaultMaxCaptureFiles;
  TcpdumpCommand tcpdump;  // from probeTcpdump() in production
  base::Duration resync_period = std::chrono::seconds(10);
  base::Duration sandbox_retry = std::chrono::seconds(2);  // a Pod whose sandbox is not READY yet
  base::Duration backoff_initial = std::chrono::seconds(1);
  base::Duration backoff_max = std::chrono::minutes(5);
  // Each retry's delay is drawn from [d * (1 - jitter), d], so that the captures of a node (or
  // of a cluster, after a runtime restart) do not retry in step.
  double backoff_jitter = 0.5;
  base::Duration stable_after = std::chrono::minutes(1);  // a tcpdump that ran this long starts
                                                          // its next backoff from the beginning
  base::Duration stop_grace = std::chrono::seconds(5);    // SIGTERM to SIGKILL
  base::Duration kill_wait = std::chrono::seconds(5);     // after SIGKILL, before saying it hangs
  // A capture with no READY sandbox this long gets one Warning saying what is missing.
  base::Duration pending_warning = std::chrono::minutes(1);
};

// A sandbox look-up reconcile() needs: the Pod's, by the UID its sandboxes are labelled with
// (k8s::sandboxUidOf: a static Pod's differs from its mirror's).
struct SandboxLookup {
  std::string pod_uid;
  std::string sandbox_uid;
  bool operator==(const SandboxLookup&) const = default;
};

enum class CaptureState {
  kPending,    // wanted, waiting for a READY sandbox (or for its look-up)
  kRunning,    // tcpdump runs
  kBackoff,    // tcpdump failed or exited; retried at a later time
  kStopping,   // tcpdump was told to stop (SIGTERM, SIGKILL after stop_grace); its exit is awaited
  kCompleted,  // a bound (duration, packets) was reached: tcpdump is done, its files are kept
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
  std::string filter;
  std::optional<std::chrono::seconds> duration;
  std::optional<uint64_t> packet_limit;
  // The running (or last) tcpdump's statistics: asked for at every resync (SIGUSR1), and at its
  // exit. A new tcpdump of the same capture counts from 0 again.
  std::optional<TcpdumpCounts> counts;
  uint64_t bytes_on_disk = 0;  // its files, measured at every resync and when it completes
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
  // Every capture's counts added up since the controller started (each tcpdump's growth since
  // its previous report): counters, for every capture ended or running.
  TcpdumpCounts packets;
};

// Decides and acts, for one Pod UID at a time, like a Kubernetes controller's reconcile: what
// the Pod wants (from the informer's cache: this node, not terminating or finished, not
// hostNetwork, a valid tcpdump.antrea.io=N) against what this node runs for it (its record:
// the sandbox it is bound to, N, tcpdump process, file base, backoff), then the difference:
//  - wanted, nothing runs:        look the sandbox up, start tcpdump           CaptureStarted
//  - no longer wanted:            stop tcpdump, then delete its files          CaptureStopped
//  - another sandbox is READY, or N changed, or the Pod was recreated under the same name:
//                                 stop, delete, start in the new netns         CaptureRestarted
//  - tcpdump exited by itself:    restart after a capped, jittered backoff     CaptureFailed,
//                                                                              CaptureRestarted
//    (unless its sandbox went away with it: then it is a sandbox change, told as one)
//  - sandbox not READY yet:       look again after sandbox_retry, silently; after
//                                 pending_warning (a minute), once          CapturePending
//  - runtime unreachable, start failed: retry with backoff                     CaptureFailed
//  - invalid annotation / hostNetwork Pod: nothing runs  InvalidCaptureAnnotation / CaptureFailed
// Each outcome is one Event: a failure that repeats through retries is reported once, also when
// only numbers in it differ (pids, counters, sandbox IDs: see sameFailure()). File names and name
// collisions: see capture_files.h. A stop deletes the capture's files, and so does a restart for
// a new sandbox, N or UID (the files would mix two captures); a restart after tcpdump's own exit
// keeps them (tcpdump rewrites them in turn), and goes on with the capture's bounds: its time
// and packets are the capture's, not each tcpdump's. A controller's start keeps the files of a
// Completed capture and goes on with a bounded one, and deletes every other capture file it
// finds (startFresh(), from each capture's SavedCapture).
//
// It never waits and never does I/O other than the capture files and fork/exec:
//  - Stopping is a signal: SIGTERM, the record turns Stopping, and reconcile() asks to be called
//    again at the grace period's end, when it sends SIGKILL. The tcpdump's exit (recordExit())
//    completes the stop. Until then nothing else starts for that capture: never two tcpdumps on
//    the same files.
//  - Sandboxes are looked up by the caller: reconcile() lists what it needs in takeLookups(), and
//    the answers come back through recordSandbox(). A capture is bound to its sandbox: a running
//    one is looked up again only when a resync's snapshot (checkBindings()) shows another READY
//    sandbox, or none, or after its tcpdump exited; a restart for a new N reuses the binding.
//
// Not thread-safe, by design: one worker thread (the CaptureWorker's) owns it and all capture
// state. It forks tcpdump from that thread too, which keeps PR_SET_PDEATHSIG meaningful.
class Reconciler {
 public:
  Reconciler(CaptureOptions options, k8s::PodLister& pods, k8s::EventSink& events,
             proc::ProcessLauncher& launcher, const base::Clock& clock);

  // Returns when to look at this Pod again; nullopt: on its next change, its tcpdump's exit, the
  // answer to its sandbox look-up, or the next resync.
  std::optional<base::Duration> reconcile(const std::string& pod_uid);

  // The Pods whose sandbox reconcile() needs looked up (each once until its answer came).
  std::vector<SandboxLookup> takeLookups();
  // The filter expressions reconcile() needs checked (validateCaptureFilter, which may resolve
  // host names: not on the worker's thread), each once until its verdict came.
  std::vector<std::string> takeFilterChecks();
  // A filter's verdict; returns the Pod UIDs waiting for it, to reconcile next.
  std::vector<std::string> recordFilterVerdict(const std::string& filter, absl::Status verdict);
  // The answer to a look-up; reconcile the Pod next.
  void recordSandbox(const std::string& pod_uid, absl::StatusOr<cri::SandboxInfo> sandbox);

  // What a tcpdump wrote to stderr (from ProcessLauncher's output handler, via the worker): its
  // statistics, when it reported them. True when a capture's counts changed.
  bool recordOutput(const proc::ProcessOutput& output);
  // At every resync: asks every running tcpdump for its counts (SIGUSR1, once it is listening:
  // the answer comes through recordOutput()), and measures the bytes each capture's files hold.
  void refreshCounts();

  // A tcpdump ended, by itself or stopped (from ProcessLauncher's exit handler, via the worker).
  // Returns the Pod UID to reconcile next; nullopt for a process no record holds any more.
  std::optional<std::string> recordExit(const proc::ProcessExit& exit);

  // A resync: every capture whose Pod's newest READY sandbox in `snapshot` is not the one it is
  // bound to (another, or none) is to be looked up again; returns the Pod UIDs to reconcile.
  // Captures waiting for a sandbox that now has one READY are returned too.
  std::vector<std::string> checkBindings(const cri::SandboxSnapshot& snapshot);

  // At start-up, before any capture runs. The captures an earlier run saved (SavedCapture) whose
  // Pod still wants the same capture (same UID, spec) go on: a Completed one keeps its files and
  // state and is not started again; a bounded one keeps its files and starts again with the time
  // and packets it has left (or completes, if its time ran out meanwhile). Every other capture
  // file is deleted: no tcpdump of ours writes it any more. Then a record for every other Pod
  // that wants a capture, oldest first, so that of two same-named Pods the older one gets the
  // plain file name whatever order their reconciles run in; those start afresh.
  absl::Status startFresh();

  // At shutdown: sends `signal` to every tcpdump; returns how many it sent it to. Their exits
  // come back through recordExit(); the files stay until the next start deletes them.
  int signalAll(int signal);
  // How many tcpdumps have not reported their exit yet.
  int processes() const { return static_cast<int>(owners_.size()); }

  std::vector<std::string> trackedPods() const;
  std::vector<CaptureStatus> captures() const;
  CaptureStats stats() const;

 private:
  enum class NextStart { kAnnounce, kAnnounceRestart, kQuiet };
  struct Record {
    k8s::ObjectReference pod;
    std::string sandbox_uid;  // k8s::sandboxUidOf(pod)
    std::string file_base;
    std::string file_note;  // why the name is not capture-<pod>.pcap, for the Event
    CaptureSpec spec;       // what runs, or ran last (files, filter, bounds)
    CaptureState state = CaptureState::kPending;
    std::optional<proc::ProcessId> process;
    pid_t pid = 0;
    base::TimePoint started_at;
    // The sandbox the capture is bound to: where tcpdump runs, or where its next start goes;
    // unset until its first start.
    std::optional<cri::SandboxInfo> sandbox;
    std::string netns_path;  // the path tcpdump entered (the CRI's, or the /proc fallback)
    // Look the sandbox up before anything else: a resync saw another READY sandbox (or none),
    // tcpdump exited, the Pod was recreated, or a start failed.
    bool binding_suspect = false;
    bool lookup_pending = false;  // in takeLookups(), no answer yet
    // Since when no READY sandbox was found (unset: one was, or none was looked for yet), and
    // whether that was told (kReasonPending, once).
    std::optional<base::TimePoint> waiting_since;
    bool waiting_reported = false;
    std::optional<absl::StatusOr<cri::SandboxInfo>> lookup;  // the answer, until used
    // The files of a tcpdump that was stopped for a restart: deleted before the next start.
    bool files_stale = false;
    // tcpdump's own exit, until a look-up tells whether its sandbox went away with it.
    struct Exit {
      std::string status;   // "tcpdump exited with status 1"
      std::string message;  // with tcpdump's error lines
    };
    std::optional<Exit> unexplained_exit;
    // Why the capture ends, once a stop was asked for it: when tcpdump is gone the capture ends
    // (files deleted, CaptureStopped) even if the Pod wants one again by then, which is then a
    // new capture.
    std::string ending;
    // Why the capture completes, once a bound was reached: tcpdump's exit then completes it
    // (files kept, CaptureCompleted) instead of ending it.
    std::string completing;
    // When the capture began (its first tcpdump, not a restart's); unset until it starts, and
    // again when a restart makes it a new capture.
    std::optional<base::WallTime> began;
    base::TimePoint ends_at;      // with a duration: when the capture is to be stopped
    uint64_t packets_before = 0;  // written by the capture's earlier tcpdumps (packet bound)
    TcpdumpStatsParser stats;     // the running tcpdump's stderr
    std::optional<TcpdumpCounts> counts;
    uint64_t bytes_on_disk = 0;
    bool drops_reported = false;    // the capture's first kernel drops were told (once)
    base::TimePoint stop_deadline;  // Stopping: when SIGKILL follows
    bool killed = false;            // Stopping: SIGKILL sent
    base::Backoff backoff{base::Duration(1), base::Duration(1)};  // set by createRecord()
    base::TimePoint retry_at;
    std::string last_failure_reported;
    NextStart next_start = NextStart::kAnnounce;
    std::string restart_reason;
    uint64_t restarts = 0;
    std::string last_error;

    // Only a start binds a capture to a sandbox.
    bool everStarted() const { return sandbox.has_value(); }
  };
  struct Desire {
    bool wanted = false;
    CaptureSpec spec;
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
  std::optional<base::Duration> ensureRunning(Record& record, const CaptureSpec& spec);
  // A bound was reached: stop tcpdump (its exit completes the capture), or complete it now.
  std::optional<base::Duration> completeCapture(Record& record, std::string why);
  std::string describeCounts(const Record& record) const;
  // A report from tcpdump: adds its growth to the totals; Warns of the capture's first drops.
  void takeCounts(Record& record, const TcpdumpCounts& counts);
  void measureFiles(Record& record);
  // Writes what startFresh() needs to go on with the capture after a restart.
  void save(const Record& record, std::string_view completed_reason = {});
  // A capture an earlier run saved, if the Pod still wants exactly it.
  bool resume(const SavedCapture& saved);
  // The look-up's answer when it came; otherwise asks for one (nullopt: wait for it).
  std::optional<absl::StatusOr<cri::SandboxInfo>> lookUp(Record& record);
  // tcpdump exited by itself: with its sandbox (a sandbox change), or a failure of its own.
  std::optional<base::Duration> explainExit(Record& record,
                                            const absl::StatusOr<cri::SandboxInfo>& sandbox);
  std::optional<base::Duration> untilRetry(const Record& record) const;
  std::optional<base::Duration> onResolveFailure(Record& record, const absl::Status& status);
  std::optional<base::Duration> launch(Record& record);
  // Before a start that replaces the capture (new sandbox, N or UID): tells tcpdump to stop,
  // binds the record to `sandbox`, starts the backoff afresh and announces the restart. The old
  // files go once tcpdump is gone.
  std::optional<base::Duration> restart(Record& record, const cri::SandboxInfo& sandbox,
                                        std::string why);
  // SIGTERM once, SIGKILL at stop_deadline: returns when to come back, nullopt to wait for the
  // exit.
  std::optional<base::Duration> stop(Record& record);
  base::Duration fail(Record& record, const std::string& message);
  std::optional<base::Duration> endCapture(Records::iterator it, const std::string& why);
  std::string deleteFiles(const Record& record);
  std::string describeCapture(const Record& record) const;
  void emit(const k8s::ObjectReference& pod, k8s::EventType type, const char* reason,
            const std::string& message);

  const CaptureOptions options_;
  k8s::PodLister& pods_;
  k8s::EventSink& events_;
  proc::ProcessLauncher& launcher_;
  const base::Clock& clock_;
  const CaptureFiles files_;
  const SavedCaptures saved_;

  Records records_;                                // by Pod UID
  std::map<proc::ProcessId, std::string> owners_;  // live tcpdump -> its record's Pod UID
  std::vector<std::string> lookups_;               // for takeLookups()
  std::map<std::string, std::string> notices_;     // Pod UID -> last Warning shown
  std::set<std::string> host_network_pods_;        // UIDs the runtime says are hostNetwork
  // Filters checked (bounded: cleared past kMaxFilterVerdicts), and the Pods waiting for one.
  std::map<std::string, absl::Status> filter_verdicts_;
  std::map<std::string, std::set<std::string>> filter_waiters_;
  std::vector<std::string> filter_checks_;  // for takeFilterChecks()
  CaptureStats stats_;
};

// Whether two failure messages tell the same failure: equal once every long hexadecimal word (a
// sandbox or container ID) is one '<id>' and, past the first ": " (what failed, and tcpdump's
// exit status), every run of digits is one '#'. A crash loop whose messages differ only in pids,
// counters or IDs is reported once; another exit status is another failure.
bool sameFailure(absl::string_view a, absl::string_view b);

}  // namespace capture

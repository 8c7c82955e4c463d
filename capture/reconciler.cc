#include "capture/reconciler.h"

#include <signal.h>

#include <algorithm>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace capture {
namespace {

std::string displayName(const k8s::ObjectReference& pod) {
  return absl::StrCat(pod.namespace_, "/", pod.name);
}

// Why a bounded capture completes.
std::string durationReached(const CaptureSpec& spec) {
  return absl::StrCat("the duration of ", spec.duration->count(), "s was reached");
}
std::string packetsReached(const CaptureSpec& spec) {
  return absl::StrCat("the packet count of ", *spec.packets, " was reached");
}

}  // namespace

const char* toString(CaptureState state) {
  switch (state) {
    case CaptureState::kPending:
      return "Pending";
    case CaptureState::kRunning:
      return "Running";
    case CaptureState::kBackoff:
      return "Backoff";
    case CaptureState::kStopping:
      return "Stopping";
    case CaptureState::kCompleted:
      return "Completed";
  }
  return "Unknown";
}

nlohmann::json toJson(const CaptureStatus& status) {
  return {
      {"podUid", status.pod_uid},
      {"podNamespace", status.pod_namespace},
      {"podName", status.pod_name},
      {"state", toString(status.state)},
      {"files", status.files},
      {"filePath", status.file_path},
      {"filter", status.filter},
      {"durationSeconds", status.duration ? nlohmann::json(status.duration->count()) : nullptr},
      {"packetLimit", status.packet_limit ? nlohmann::json(*status.packet_limit) : nullptr},
      {"counts", toJson(status.counts)},
      {"bytesOnDisk", status.bytes_on_disk},
      {"sandboxId", status.sandbox_id},
      {"netnsPath", status.netns_path},
      {"pid", status.pid},
      {"restarts", status.restarts},
      {"lastError", status.last_error},
  };
}

Reconciler::Reconciler(CaptureOptions options, k8s::PodLister& pods, k8s::EventSink& events,
                       proc::ProcessLauncher& launcher, const base::Clock& clock)
    : options_(std::move(options)),
      pods_(pods),
      events_(events),
      launcher_(launcher),
      clock_(clock),
      files_(options_.capture_dir),
      saved_(options_.capture_dir) {}

Reconciler::Desire Reconciler::desireOf(const std::string& pod_uid,
                                        const std::optional<k8s::Pod>& pod) const {
  Desire desire;
  if (!pod) {
    desire.why_not = "the Pod was deleted";
  } else if (pod->node_name != options_.node_name) {
    desire.why_not = absl::StrCat("the Pod is not on node ", options_.node_name);
  } else if (pod->terminating) {
    desire.why_not = "the Pod is terminating";
  } else if (pod->phase == "Succeeded" || pod->phase == "Failed") {
    desire.why_not = absl::StrCat("the Pod has finished (phase ", pod->phase, ")");
  } else if (auto value = pod->annotations.find(kCaptureAnnotation);
             value == pod->annotations.end()) {
    desire.why_not = absl::StrCat("annotation ", kCaptureAnnotation, " was removed");
  } else if (auto spec = captureSpecOf(pod->annotations, options_.max_files); !spec.ok()) {
    desire.why_not = std::string(spec.status().message());
    desire.notice_reason = kReasonInvalidAnnotation;
    desire.notice = absl::StrCat(spec.status().message(), "; no capture runs");
  } else if (pod->host_network || host_network_pods_.contains(pod_uid)) {
    desire.why_not = "the Pod uses the host network";
    desire.notice_reason = kReasonFailed;
    desire.notice =
        "no capture: the Pod uses the node's network namespace (hostNetwork), so its traffic "
        "is the node's; capture on the node instead";
  } else {
    desire.wanted = true;
    desire.spec = *spec;
    if (!spec->filter.empty()) {
      auto verdict = filter_verdicts_.find(spec->filter);
      if (verdict != filter_verdicts_.end() && !verdict->second.ok()) {
        desire.wanted = false;
        desire.why_not = std::string(verdict->second.message());
        desire.notice_reason = kReasonInvalidAnnotation;
        desire.notice = absl::StrCat(verdict->second.message(), "; no capture runs");
      }
    }
  }
  return desire;
}

void Reconciler::noticeOnce(const std::string& pod_uid, const std::optional<k8s::Pod>& pod,
                            const Desire& desire) {
  if (!pod || desire.notice.empty()) {
    notices_.erase(pod_uid);
    return;
  }
  const std::string key = absl::StrCat(desire.notice_reason, ": ", desire.notice);
  auto [it, inserted] = notices_.try_emplace(pod_uid, key);
  if (!inserted && it->second == key) return;
  it->second = key;
  emit(k8s::referenceTo(*pod), k8s::EventType::kWarning, desire.notice_reason.c_str(),
       desire.notice);
}

std::optional<base::Duration> Reconciler::reconcile(const std::string& pod_uid) {
  const std::optional<k8s::Pod> pod = pods_.get(pod_uid);
  if (!pod) host_network_pods_.erase(pod_uid);
  const Desire desire = desireOf(pod_uid, pod);
  auto it = records_.find(pod_uid);
  if (it != records_.end() && !it->second.ending.empty() && !it->second.process) {
    // The stop asked for is done: that capture ends, whatever the Pod wants now.
    endCapture(it, it->second.ending);
    it = records_.end();
  }
  if (!desire.wanted) {
    noticeOnce(pod_uid, pod, desire);
    if (it != records_.end()) return endCapture(it, desire.why_not);
    return std::nullopt;
  }
  notices_.erase(pod_uid);
  if (!desire.spec.filter.empty() && !filter_verdicts_.contains(desire.spec.filter)) {
    // Checked off this thread; the verdict brings this Pod back. A running capture keeps its
    // spec until then.
    auto& waiters = filter_waiters_[desire.spec.filter];
    if (waiters.empty()) filter_checks_.push_back(desire.spec.filter);
    waiters.insert(pod_uid);
    return std::nullopt;
  }
  if (it == records_.end()) {
    auto created = createRecord(*pod);
    if (!created.ok()) {
      Desire unnamed;
      unnamed.notice_reason = kReasonFailed;
      unnamed.notice = std::string(created.status().message());
      noticeOnce(pod_uid, pod, unnamed);
      return std::nullopt;
    }
    it = *created;
  }
  return ensureRunning(it->second, desire.spec);
}

absl::StatusOr<Reconciler::Records::iterator> Reconciler::createRecord(const k8s::Pod& pod) {
  // A Pod recreated under the same name (a new UID: StatefulSets do this) takes over the record
  // of its predecessor, whose reconcile may simply not have run yet: its tcpdump (stopped once
  // the new Pod's sandbox is known), its file name, its history.
  auto predecessor = std::find_if(records_.begin(), records_.end(), [&](const auto& entry) {
    return entry.second.pod.namespace_ == pod.namespace_ && entry.second.pod.name == pod.name;
  });
  if (predecessor != records_.end()) {
    Record record = std::move(predecessor->second);
    const std::string old_uid = predecessor->first;
    records_.erase(predecessor);
    LOG(INFO) << displayName(record.pod) << " recreated: UID " << old_uid << " -> " << pod.uid;
    for (auto& [process, owner] : owners_) {
      if (owner == old_uid) owner = pod.uid;
    }
    record.pod = k8s::referenceTo(pod);
    record.sandbox_uid = k8s::sandboxUidOf(pod);
    record.binding_suspect = true;
    record.lookup_pending = false;
    record.lookup.reset();
    record.ending.clear();  // its stop, if one was asked for, is now the new Pod's restart
    if (record.everStarted()) {
      record.next_start = NextStart::kAnnounceRestart;
      std::string why = absl::StrCat("the Pod was recreated (previous UID ", old_uid, ", sandbox ",
                                     record.sandbox->id, ")");
      if (!record.restart_reason.empty()) absl::StrAppend(&why, " (", record.restart_reason, ")");
      record.restart_reason = std::move(why);
      // The old Pod's files are not the new Pod's capture, even where no tcpdump runs now.
      record.files_stale = true;
    }
    return records_.emplace(pod.uid, std::move(record)).first;
  }

  Record record;
  record.pod = k8s::referenceTo(pod);
  record.sandbox_uid = k8s::sandboxUidOf(pod);
  record.backoff =
      base::Backoff(options_.backoff_initial, options_.backoff_max, options_.backoff_jitter);
  const std::string plain = plainFileBase(pod.namespace_, pod.name, options_.max_files);
  const std::string qualified = qualifiedFileBase(pod.namespace_, pod.name, options_.max_files);
  if (const Record* holder = holderOf(plain); holder == nullptr) {
    record.file_base = plain;
    if (plain != absl::StrCat(kCaptureFilePrefix, pod.name, kCaptureFileSuffix)) {
      record.file_note = "the Pod's name is too long for a file name, so it is shortened";
    }
  } else if (holderOf(qualified) == nullptr) {
    record.file_base = qualified;
    record.file_note = absl::StrCat(plain, " is already used by Pod ", displayName(holder->pod));
  } else {
    return absl::AlreadyExistsError(
        absl::StrCat("no capture: both file names ", plain, " and ", qualified, " are in use"));
  }
  return records_.emplace(pod.uid, std::move(record)).first;
}

const Reconciler::Record* Reconciler::holderOf(const std::string& file_base) const {
  for (const auto& [uid, record] : records_) {
    if (record.file_base == file_base) return &record;
  }
  return nullptr;
}

std::optional<base::Duration> Reconciler::ensureRunning(Record& record, const CaptureSpec& spec) {
  // Never two tcpdumps on the same files: nothing else happens until this one is gone.
  if (record.state == CaptureState::kStopping) {
    if (!record.completing.empty() && spec != record.spec) {
      // Asked for something else while a bound's stop is under way: a restart, once it is gone.
      return restart(record, *record.sandbox, spec.differenceFrom(record.spec));
    }
    return stop(record);
  }
  if (record.state == CaptureState::kCompleted) {
    if (spec == record.spec) return std::nullopt;  // done; its files stay until it is removed
    record.state = CaptureState::kPending;
    restart(record, *record.sandbox, spec.differenceFrom(record.spec));
    record.spec = spec;
    record.binding_suspect = true;  // it may have been a while: look the sandbox up again
  }

  if (record.process) {
    if (record.binding_suspect) {
      auto sandbox = lookUp(record);
      if (!sandbox) return std::nullopt;
      if (sandbox->ok() && (*sandbox)->id != record.sandbox->id) {
        // The kubelet replaced the sandbox: the capture moves, whether tcpdump still runs in the
        // old one or is about to end with it.
        return restart(
            record, **sandbox,
            absl::StrCat("the sandbox changed from ", record.sandbox->id, " to ", (*sandbox)->id));
      }
      if (sandbox->ok()) {
        record.binding_suspect = false;
        record.waiting_since.reset();
        record.waiting_reported = false;
      } else {
        // None READY (being replaced: tcpdump keeps going until a new one is), or the runtime
        // cannot tell: keep capturing and look again.
        VLOG(1) << displayName(record.pod) << ": " << sandbox->status();
        return options_.sandbox_retry;
      }
    }
    if (spec != record.spec) {
      // Same sandbox, known from the binding: no look-up.
      return restart(record, *record.sandbox, spec.differenceFrom(record.spec));
    }
    if (record.spec.duration) {
      const base::TimePoint now = clock_.now();
      if (now >= record.ends_at) {
        return completeCapture(record, durationReached(record.spec));
      }
      return std::chrono::ceil<base::Duration>(record.ends_at - now);
    }
    return std::nullopt;
  }

  if (record.unexplained_exit) {
    auto sandbox = lookUp(record);
    if (!sandbox) return std::nullopt;
    if (auto wait = explainExit(record, *sandbox)) return wait;
  }
  record.spec = spec;
  if (auto wait = untilRetry(record)) return wait;
  if (!record.sandbox || record.binding_suspect) {
    auto sandbox = lookUp(record);
    if (!sandbox) return std::nullopt;
    if (!sandbox->ok()) return onResolveFailure(record, sandbox->status());
    record.waiting_since.reset();
    record.waiting_reported = false;
    if (record.everStarted() && (*sandbox)->id != record.sandbox->id) {
      // The Pod's sandbox changed while no tcpdump ran (it ended with the old one, or never
      // started in it): a restart, told as one.
      restart(
          record, **sandbox,
          absl::StrCat("the sandbox changed from ", record.sandbox->id, " to ", (*sandbox)->id));
    }
    record.sandbox = **sandbox;
    record.binding_suspect = false;
  }
  return launch(record);
}

std::optional<absl::StatusOr<cri::SandboxInfo>> Reconciler::lookUp(Record& record) {
  if (record.lookup) {
    absl::StatusOr<cri::SandboxInfo> answer = std::move(*record.lookup);
    record.lookup.reset();
    return answer;
  }
  if (!record.lookup_pending) {
    record.lookup_pending = true;
    lookups_.push_back(record.pod.uid);
  }
  if (!record.process && record.state != CaptureState::kBackoff) {
    record.state = CaptureState::kPending;
  }
  return std::nullopt;
}

std::vector<SandboxLookup> Reconciler::takeLookups() {
  std::vector<SandboxLookup> lookups;
  for (std::string& uid : std::exchange(lookups_, {})) {
    auto it = records_.find(uid);
    if (it == records_.end()) continue;  // ended meanwhile
    lookups.push_back({std::move(uid), it->second.sandbox_uid});
  }
  return lookups;
}

void Reconciler::recordSandbox(const std::string& pod_uid,
                               absl::StatusOr<cri::SandboxInfo> sandbox) {
  auto it = records_.find(pod_uid);
  if (it == records_.end() || !it->second.lookup_pending) return;  // ended meanwhile
  it->second.lookup_pending = false;
  it->second.lookup = std::move(sandbox);
}

std::optional<base::Duration> Reconciler::explainExit(
    Record& record, const absl::StatusOr<cri::SandboxInfo>& sandbox) {
  const Record::Exit exit = *std::move(record.unexplained_exit);
  record.unexplained_exit.reset();
  const std::string& message = exit.message;
  bool sandbox_gone = false;
  if (sandbox.ok()) {
    sandbox_gone = sandbox->id != record.sandbox->id;
  } else {
    switch (cri::failureOf(sandbox.status())) {
      case cri::ResolveFailure::kNoSandbox:
      case cri::ResolveFailure::kNoReadySandbox:
      case cri::ResolveFailure::kNetnsClosed:
        sandbox_gone = true;
        break;
      default:
        break;  // the runtime cannot tell: count it as tcpdump's own failure
    }
  }
  if (sandbox_gone) {
    // Stopping a sandbox takes the Pod's interface away, and tcpdump with it ("The interface
    // disappeared"): the kubelet replacing the sandbox, or the Pod going, not a failure. No
    // Warning and no backoff: the next look-up moves the capture into the new sandbox (and says
    // so with CaptureRestarted), or the Pod's end ends it.
    LOG(INFO) << displayName(record.pod) << ": " << message << ", with its sandbox "
              << record.sandbox->id << "; waiting for the Pod's next sandbox";
    record.state = CaptureState::kPending;
    record.binding_suspect = true;
    if (sandbox.ok()) record.lookup = sandbox;  // the new one: use it at once
    return sandbox.ok() ? std::nullopt : std::optional(options_.sandbox_retry);
  }
  record.binding_suspect = false;
  const bool reported = !sameFailure(message, record.last_failure_reported);
  LOG(WARNING) << displayName(record.pod) << ": " << message;
  const base::Duration delay = fail(record, message);
  record.next_start = reported ? NextStart::kAnnounceRestart : NextStart::kQuiet;
  record.restart_reason = exit.status;
  return delay;
}

std::optional<base::Duration> Reconciler::untilRetry(const Record& record) const {
  if (record.state != CaptureState::kBackoff) return std::nullopt;
  const auto left = std::chrono::ceil<base::Duration>(record.retry_at - clock_.now());
  if (left <= base::Duration::zero()) return std::nullopt;
  return left;
}

std::optional<base::Duration> Reconciler::onResolveFailure(Record& record,
                                                           const absl::Status& status) {
  switch (cri::failureOf(status)) {
    case cri::ResolveFailure::kHostNetwork: {
      // spec.hostNetwork is immutable, so the runtime's word holds for the Pod's lifetime.
      const std::string uid = record.pod.uid;
      LOG(INFO) << displayName(record.pod) << ": " << status;
      host_network_pods_.insert(uid);
      const std::optional<k8s::Pod> pod = pods_.get(uid);
      const Desire desire = desireOf(uid, pod);
      noticeOnce(uid, pod, desire);
      return endCapture(records_.find(uid), desire.why_not);
    }
    case cri::ResolveFailure::kNoSandbox:
    case cri::ResolveFailure::kNoReadySandbox:
    case cri::ResolveFailure::kNetnsClosed: {
      // Normal while a Pod starts, or while the kubelet replaces its sandbox; not for long.
      VLOG(1) << displayName(record.pod) << ": " << status;
      if (record.state != CaptureState::kBackoff) record.state = CaptureState::kPending;
      const base::TimePoint now = clock_.now();
      if (!record.waiting_since) record.waiting_since = now;
      if (!record.waiting_reported && now - *record.waiting_since >= options_.pending_warning) {
        record.waiting_reported = true;
        std::string message = absl::StrCat(
            "no capture yet: for ",
            std::chrono::duration_cast<std::chrono::seconds>(now - *record.waiting_since).count(),
            "s the container runtime has had no READY sandbox labelled io.kubernetes.pod.uid=",
            record.sandbox_uid, " (", status.message(), ")");
        if (record.sandbox_uid == record.pod.uid) {
          absl::StrAppend(&message,
                          "; a static Pod's sandboxes carry the UID of its manifest, which its "
                          "mirror Pod shows as annotation ",
                          k8s::kMirrorPodAnnotation);
        }
        emit(record.pod, k8s::EventType::kWarning, kReasonPending,
             absl::StrCat(
                 message, ". Still looking every ",
                 std::chrono::duration_cast<std::chrono::seconds>(options_.sandbox_retry).count(),
                 "s"));
      }
      return options_.sandbox_retry;
    }
    default:
      return fail(record, absl::StrCat("cannot look up the Pod's sandbox in the container "
                                       "runtime: ",
                                       status.message()));
  }
}

std::optional<base::Duration> Reconciler::launch(Record& record) {
  const base::TimePoint now = clock_.now();
  if (record.files_stale || !record.began) {  // a new capture begins
    if (record.files_stale) deleteFiles(record);
    record.files_stale = false;
    record.bytes_on_disk = 0;
    record.drops_reported = false;
    record.began = clock_.wallNow();
    record.packets_before = 0;
    if (record.spec.duration) record.ends_at = now + *record.spec.duration;
  } else if (record.counts) {
    // The capture goes on after its tcpdump's exit (or the controller's restart): its bounds
    // are the capture's, and may have been met meanwhile.
    record.packets_before += record.counts->captured;
    record.counts.reset();
  }
  if (record.spec.duration && now >= record.ends_at) {
    return completeCapture(record, durationReached(record.spec));
  }
  CaptureSpec run = record.spec;
  if (run.packets) {
    if (record.packets_before >= *run.packets) {
      return completeCapture(record, packetsReached(record.spec));
    }
    *run.packets -= record.packets_before;
  }
  const cri::SandboxInfo& sandbox = *record.sandbox;
  proc::LaunchSpec spec;
  spec.owner = record.pod.uid;
  spec.argv = options_.tcpdump.argv(run, files_.pathOf(record.file_base));
  spec.netns_path = sandbox.netns_path;
  spec.sandbox_pid = sandbox.pid;
  spec.sandbox_id = sandbox.id;
  // tcpdump follows whatever is planted under its files' names: a capture refuses to start then.
  if (absl::Status safe = files_.checkSafeToWrite(record.file_base, run.files); !safe.ok()) {
    return fail(record, absl::StrCat("not starting tcpdump: ", safe.message()));
  }
  auto launched = launcher_.start(spec);
  if (!launched.ok()) {
    // The netns may have gone with the sandbox: look it up again before the next try.
    record.binding_suspect = true;
    return fail(record, absl::StrCat("cannot start tcpdump in sandbox ", sandbox.id, ": ",
                                     launched.status().message()));
  }
  record.process = launched->id;
  owners_[launched->id] = record.pod.uid;
  record.pid = launched->pid;
  record.started_at = now;
  record.stats = TcpdumpStatsParser();
  record.counts.reset();
  record.netns_path = launched->netns_path;
  record.state = CaptureState::kRunning;
  record.last_error.clear();
  ++stats_.started;
  save(record);
  std::optional<base::Duration> again;
  if (record.spec.duration) again = std::chrono::ceil<base::Duration>(record.ends_at - now);
  switch (record.next_start) {
    case NextStart::kAnnounce:
      emit(record.pod, k8s::EventType::kNormal, kReasonStarted, describeCapture(record));
      break;
    case NextStart::kAnnounceRestart:
      ++stats_.restarts;
      ++record.restarts;
      emit(record.pod, k8s::EventType::kNormal, kReasonRestarted,
           absl::StrCat("Restarted: ", record.restart_reason, ". ", describeCapture(record)));
      break;
    case NextStart::kQuiet:
      ++stats_.restarts;
      ++record.restarts;
      break;
  }
  record.next_start = NextStart::kQuiet;
  record.restart_reason.clear();
  return again;
}

std::optional<base::Duration> Reconciler::completeCapture(Record& record, std::string why) {
  if (record.process) {
    if (record.completing.empty()) {
      LOG(INFO) << displayName(record.pod) << ": completing capture: " << why;
      record.completing = why;
    }
    return stop(record);  // its exit completes it
  }
  record.state = CaptureState::kCompleted;
  record.completing.clear();
  measureFiles(record);
  save(record, why);
  std::vector<std::string> kept;
  if (auto names = files_.filesOf(record.file_base); names.ok()) {
    for (const std::string& name : *names) kept.push_back(files_.pathOf(name));
  }
  emit(record.pod, k8s::EventType::kNormal, kReasonCompleted,
       absl::StrCat("Completed: ", why, "; ", describeCounts(record), "; kept ",
                    kept.empty() ? "no file" : absl::StrJoin(kept, ", "),
                    " until the annotation is removed"));
  return std::nullopt;
}

std::string Reconciler::describeCounts(const Record& record) const {
  if (!record.counts) return "tcpdump reported no packet counts";
  const TcpdumpCounts& c = *record.counts;
  std::string text =
      absl::StrCat(c.captured, " packets captured, ", c.received_by_filter, " received by filter, ",
                   c.dropped_by_kernel, " dropped by kernel");
  if (c.dropped_by_interface != 0) {
    absl::StrAppend(&text, ", ", c.dropped_by_interface, " dropped by interface");
  }
  if (record.packets_before > 0) {
    absl::StrAppend(&text, " (and ", record.packets_before,
                    " captured by the capture's earlier tcpdumps)");
  }
  absl::StrAppend(&text, ", ", record.bytes_on_disk, " bytes on disk");
  return text;
}

bool Reconciler::recordOutput(const proc::ProcessOutput& output) {
  auto owner = owners_.find(output.id);
  if (owner == owners_.end()) return false;
  auto it = records_.find(owner->second);
  if (it == records_.end() || it->second.process != output.id) return false;
  Record& record = it->second;
  if (!record.stats.feed(output.text)) return false;
  takeCounts(record, *record.stats.counts());
  return true;
}

void Reconciler::takeCounts(Record& record, const TcpdumpCounts& counts) {
  const TcpdumpCounts before = record.counts.value_or(TcpdumpCounts{});
  // A count below the last one is a new tcpdump's (or a wrapped 32-bit one): all of it is new.
  const auto growth = [](uint64_t now, uint64_t then) { return now >= then ? now - then : now; };
  stats_.packets.captured += growth(counts.captured, before.captured);
  stats_.packets.received_by_filter += growth(counts.received_by_filter, before.received_by_filter);
  stats_.packets.dropped_by_kernel += growth(counts.dropped_by_kernel, before.dropped_by_kernel);
  stats_.packets.dropped_by_interface +=
      growth(counts.dropped_by_interface, before.dropped_by_interface);
  record.counts = counts;
  // A packet bound goes on from the last count after a restart.
  if (record.spec.packets && record.state != CaptureState::kCompleted) save(record);
  if (counts.dropped_by_kernel == 0 || record.drops_reported) return;
  record.drops_reported = true;
  emit(record.pod, k8s::EventType::kWarning, kReasonPacketsDropped,
       absl::StrCat("The kernel dropped ", counts.dropped_by_kernel,
                    " packets before tcpdump could read them (its buffer was full): the capture "
                    "misses them; ",
                    describeCounts(record),
                    ". A narrower tcpdump.antrea.io/filter lowers the load. Told once per "
                    "capture; the counts go on in the controller's captures and metrics"));
}

void Reconciler::refreshCounts() {
  for (auto& [uid, record] : records_) {
    if (record.process && record.state == CaptureState::kRunning && record.stats.listening()) {
      if (absl::Status sent = launcher_.signal(*record.process, SIGUSR1); !sent.ok()) {
        VLOG(1) << displayName(record.pod) << ": SIGUSR1: " << sent;  // its exit is on its way
      }
    }
    if (record.everStarted()) measureFiles(record);
  }
}

void Reconciler::measureFiles(Record& record) {
  auto bytes = files_.bytesOf(record.file_base);
  if (!bytes.ok()) {
    VLOG(1) << displayName(record.pod) << ": " << bytes.status();
    return;
  }
  record.bytes_on_disk = *bytes;
}

std::vector<std::string> Reconciler::takeFilterChecks() {
  return std::exchange(filter_checks_, {});
}

std::vector<std::string> Reconciler::recordFilterVerdict(const std::string& filter,
                                                         absl::Status verdict) {
  // A bound on what was checked: a node's Pods use a few filters at a time.
  constexpr size_t kMaxFilterVerdicts = 256;
  if (filter_verdicts_.size() >= kMaxFilterVerdicts) filter_verdicts_.clear();
  filter_verdicts_[filter] = std::move(verdict);
  auto waiters = filter_waiters_.extract(filter);
  if (waiters.empty()) return {};
  return {waiters.mapped().begin(), waiters.mapped().end()};
}

std::optional<base::Duration> Reconciler::restart(Record& record, const cri::SandboxInfo& sandbox,
                                                  std::string why) {
  LOG(INFO) << displayName(record.pod) << ": restarting capture: " << why;
  // Bound to the new sandbox from now on, started or not: retries of a start that fails there
  // are the same failure, backed off and reported once.
  record.sandbox = sandbox;
  record.binding_suspect = false;
  record.files_stale = true;
  record.completing.clear();  // a bound reached by the old capture does not end the new one
  record.backoff.reset();
  record.last_failure_reported.clear();
  if (record.state == CaptureState::kBackoff) record.state = CaptureState::kPending;
  record.next_start = NextStart::kAnnounceRestart;
  // A restart still pending (tcpdump's exit, an earlier change) is part of this one's story.
  if (!record.restart_reason.empty()) absl::StrAppend(&why, " (", record.restart_reason, ")");
  record.restart_reason = std::move(why);
  if (!record.process) return std::nullopt;
  return stop(record);
}

std::optional<base::Duration> Reconciler::stop(Record& record) {
  const base::TimePoint now = clock_.now();
  if (record.state != CaptureState::kStopping) {
    record.state = CaptureState::kStopping;
    record.stop_deadline = now + options_.stop_grace;
    record.killed = false;
    if (absl::Status sent = launcher_.signal(*record.process, SIGTERM); !sent.ok()) {
      VLOG(1) << displayName(record.pod) << ": SIGTERM: " << sent;  // its exit is on its way
      return std::nullopt;
    }
  }
  if (now < record.stop_deadline) {
    return std::chrono::ceil<base::Duration>(record.stop_deadline - now);
  }
  if (!record.killed) {
    LOG(WARNING) << displayName(record.pod) << ": tcpdump (pid " << record.pid << ") still runs "
                 << options_.stop_grace.count() << " ms after SIGTERM: SIGKILL";
    record.killed = true;
    record.stop_deadline = now + options_.kill_wait;
    (void)launcher_.signal(*record.process, SIGKILL);
    return options_.kill_wait;
  }
  LOG(WARNING) << displayName(record.pod) << ": tcpdump (pid " << record.pid << ") survived "
               << "SIGKILL for " << options_.kill_wait.count()
               << " ms (uninterruptible sleep?); its capture waits for its exit";
  return std::nullopt;
}

std::optional<std::string> Reconciler::recordExit(const proc::ProcessExit& exit) {
  auto owner = owners_.find(exit.id);
  if (owner == owners_.end()) return std::nullopt;
  const std::string uid = owner->second;
  owners_.erase(owner);
  auto it = records_.find(uid);
  if (it == records_.end() || it->second.process != exit.id) return std::nullopt;
  Record& record = it->second;
  record.process.reset();
  record.pid = 0;
  {
    // Its last report is in its last lines; what it wrote before came through recordOutput().
    TcpdumpStatsParser stats;
    stats.feed(exit.stderr_tail);
    stats.feed("\n");
    if (stats.counts()) takeCounts(record, *stats.counts());
  }
  if (!record.completing.empty() && record.ending.empty()) {
    completeCapture(record, record.completing);
    return uid;
  }
  record.completing.clear();
  if (record.state == CaptureState::kRunning && record.spec.packets && exit.start_error.empty() &&
      exit.status.signal == 0 && exit.status.exit_code == 0) {
    // tcpdump -c: it stopped by itself after that many packets.
    completeCapture(record, packetsReached(record.spec));
    return uid;
  }
  if (record.state == CaptureState::kStopping) {
    VLOG(1) << displayName(record.pod) << ": tcpdump stopped, " << exit.status.describe();
    record.state = CaptureState::kPending;
    return uid;
  }
  if (!exit.start_error.empty()) {
    // tcpdump never ran (the child failed to enter the netns, or to exec): a failed start, told
    // as one. The netns may have gone with the sandbox: look it up again before the next try.
    record.binding_suspect = true;
    fail(record, absl::StrCat("cannot start tcpdump in sandbox ", record.sandbox->id, ": ",
                              exit.start_error));
    return uid;
  }
  if (clock_.now() - record.started_at >= options_.stable_after) {
    record.backoff.reset();
    record.last_failure_reported.clear();
  }
  Record::Exit report;
  report.status = absl::StrCat("tcpdump ", exit.status.describe());
  report.message = report.status;
  if (const std::string errors = tcpdumpErrorLines(exit.stderr_tail); !errors.empty()) {
    absl::StrAppend(&report.message, ": ", errors);
  }
  // Did it end with its sandbox, or by itself? The next reconcile looks the sandbox up to tell.
  record.unexplained_exit = std::move(report);
  record.state = CaptureState::kPending;
  return uid;
}

std::vector<std::string> Reconciler::checkBindings(const cri::SandboxSnapshot& snapshot) {
  std::vector<std::string> changed;
  for (auto& [uid, record] : records_) {
    auto listed = snapshot.newest_ready.find(record.sandbox_uid);
    const std::string newest = listed == snapshot.newest_ready.end() ? "" : listed->second;
    if (record.sandbox) {
      if (newest == record.sandbox->id) continue;
      record.binding_suspect = true;
      changed.push_back(uid);
    } else if (!newest.empty() && record.state == CaptureState::kPending) {
      changed.push_back(uid);  // its first sandbox is READY now
    }
  }
  return changed;
}

base::Duration Reconciler::fail(Record& record, const std::string& message) {
  ++stats_.failed;
  const base::Duration delay = record.backoff.next();
  record.state = CaptureState::kBackoff;
  record.retry_at = clock_.now() + delay;
  record.last_error = message;
  if (!sameFailure(message, record.last_failure_reported)) {
    record.last_failure_reported = message;
    emit(record.pod, k8s::EventType::kWarning, kReasonFailed,
         absl::StrCat(message, "; retrying with backoff"));
  }
  return delay;
}

std::optional<base::Duration> Reconciler::endCapture(Records::iterator it, const std::string& why) {
  Record& record = it->second;
  if (record.process) {
    if (record.ending.empty()) {
      LOG(INFO) << displayName(record.pod) << ": stopping capture: " << why;
      record.ending = why;
    }
    return stop(record);  // the capture ends once tcpdump is gone
  }
  measureFiles(record);
  const std::string deleted = deleteFiles(record);
  if (record.everStarted()) {
    ++stats_.stopped;
    emit(record.pod, k8s::EventType::kNormal, kReasonStopped,
         absl::StrCat("Stopped: ", why, "; ", describeCounts(record), "; ", deleted));
  }
  records_.erase(it);
  return std::nullopt;
}

std::string Reconciler::deleteFiles(const Record& record) {
  if (absl::Status removed = saved_.remove(record.file_base); !removed.ok()) {
    LOG(ERROR) << displayName(record.pod) << ": " << removed;
  }
  auto removed = files_.removeFilesOf(record.file_base);
  if (!removed.ok()) {
    LOG(ERROR) << displayName(record.pod) << ": " << removed.status();
    return absl::StrCat("could not delete its files: ", removed.status().message());
  }
  if (removed->empty()) return "it had written no file";
  std::vector<std::string> paths;
  for (const std::string& name : *removed) paths.push_back(files_.pathOf(name));
  return absl::StrCat("deleted ", absl::StrJoin(paths, ", "));
}

std::string Reconciler::describeCapture(const Record& record) const {
  const std::vector<std::string> names = rotationFileNames(record.file_base, record.spec.files);
  std::string where = files_.pathOf(names.front());
  if (names.size() > 1) absl::StrAppend(&where, " ... ", names.back());
  std::string text =
      absl::StrCat("tcpdump (pid ", record.pid, ") writes ", where, " (", record.spec.files,
                   record.spec.files == 1 ? " file" : " files", " of 1 MB, rotating) in sandbox ",
                   record.sandbox ? record.sandbox->id : "", ", netns ", record.netns_path);
  if (const std::string limits = record.spec.describeLimits(); !limits.empty()) {
    absl::StrAppend(&text, ", ", limits);
  }
  if (!record.file_note.empty()) absl::StrAppend(&text, " (", record.file_note, ")");
  return text;
}

void Reconciler::emit(const k8s::ObjectReference& pod, k8s::EventType type, const char* reason,
                      const std::string& message) {
  VLOG(1) << displayName(pod) << " " << reason << ": " << message;
  events_.emit(pod, type, reason, message);
}

absl::Status Reconciler::startFresh() {
  auto loaded = saved_.loadAll();
  if (!loaded.ok()) return loaded.status();
  std::set<std::string> kept;
  for (const SavedCaptures::Loaded& entry : *loaded) {
    if (entry.capture.ok() && resume(*entry.capture)) {
      kept.insert(entry.capture->file_base);
      continue;
    }
    if (!entry.capture.ok()) LOG(WARNING) << "start-up: " << entry.capture.status();
    // The files of that base go below with every other one not kept.
    if (absl::Status removed = saved_.remove(entry.file_base); !removed.ok()) {
      LOG(WARNING) << "start-up: " << removed;  // not a file of ours: it stays, unread
    }
  }
  auto removed = files_.removeAllCaptureFiles(kept);
  if (!removed.ok()) return removed.status();
  std::vector<std::pair<k8s::Pod, CaptureSpec>> wanted;
  for (k8s::Pod& pod : pods_.list()) {
    if (records_.contains(pod.uid)) continue;  // resumed
    const Desire desire = desireOf(pod.uid, pod);
    if (desire.wanted) wanted.emplace_back(std::move(pod), desire.spec);
  }
  std::sort(wanted.begin(), wanted.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.creation_timestamp, a.first.namespace_, a.first.name) <
           std::tie(b.first.creation_timestamp, b.first.namespace_, b.first.name);
  });
  for (const auto& [pod, spec] : wanted) {
    // A Pod left without a usable file name gets no record here; its reconcile() says why.
    auto created = createRecord(pod);
    if (created.ok()) (*created)->second.spec = spec;
  }
  LOG(INFO) << "start-up: deleted " << removed->size() << " capture files left in " << files_.dir()
            << (removed->empty() ? "" : ": ") << absl::StrJoin(*removed, ", ") << "; kept those of "
            << kept.size() << " captures that go on; " << records_.size() << " Pods want a capture";
  return absl::OkStatus();
}

bool Reconciler::resume(const SavedCapture& saved) {
  const std::string name = absl::StrCat(saved.pod_namespace, "/", saved.pod_name);
  const std::optional<k8s::Pod> pod = pods_.get(saved.pod_uid);
  const Desire desire = desireOf(saved.pod_uid, pod);
  std::string why_not;
  if (!desire.wanted) {
    why_not = desire.why_not;
  } else if (desire.spec != saved.spec) {
    why_not = absl::StrCat("the Pod wants another capture now (",
                           desire.spec.differenceFrom(saved.spec), ")");
  } else if (!saved.completed && !saved.spec.duration && !saved.spec.packets) {
    why_not = "it has no bound: it starts afresh";
  } else if (holderOf(saved.file_base) != nullptr) {
    why_not = absl::StrCat(saved.file_base, " is another capture's now");
  }
  if (!why_not.empty()) {
    LOG(INFO) << "start-up: the capture of " << name << " in " << saved.file_base
              << " does not go on: " << why_not;
    return false;
  }
  Record record;
  record.pod = k8s::referenceTo(*pod);
  record.sandbox_uid = k8s::sandboxUidOf(*pod);
  record.backoff =
      base::Backoff(options_.backoff_initial, options_.backoff_max, options_.backoff_jitter);
  record.file_base = saved.file_base;
  record.spec = saved.spec;
  cri::SandboxInfo sandbox;
  sandbox.id = saved.sandbox_id;
  sandbox.netns_path = saved.netns_path;
  record.sandbox = sandbox;
  record.netns_path = saved.netns_path;
  record.began = saved.began;
  if (saved.completed) {
    record.state = CaptureState::kCompleted;
    record.counts = saved.counts;
    measureFiles(record);
    LOG(INFO) << "start-up: " << name << ": the capture stays Completed (" << saved.completed_reason
              << "); its files are kept";
  } else {
    // Its sandbox is looked up before anything runs: a capture whose sandbox changed meanwhile is
    // a new one, restarted as one.
    record.binding_suspect = true;
    record.packets_before = saved.packets_captured;
    std::vector<std::string> left;
    if (saved.spec.duration) {
      const auto elapsed =
          std::chrono::duration_cast<base::Duration>(clock_.wallNow() - saved.began);
      const base::Duration remaining =
          std::max(base::Duration(0),
                   std::chrono::duration_cast<base::Duration>(*saved.spec.duration) - elapsed);
      record.ends_at = clock_.now() + remaining;
      left.push_back(absl::StrCat(std::chrono::ceil<std::chrono::seconds>(remaining).count(),
                                  "s of its ", saved.spec.duration->count(), "s"));
    }
    if (saved.spec.packets) {
      left.push_back(
          absl::StrCat(*saved.spec.packets - std::min(*saved.spec.packets, saved.packets_captured),
                       " of its ", *saved.spec.packets, " packets"));
    }
    record.next_start = NextStart::kAnnounceRestart;
    record.restart_reason = absl::StrCat("the controller restarted; the capture goes on with ",
                                         absl::StrJoin(left, " and "), " left, its files kept");
    LOG(INFO) << "start-up: " << name << ": " << record.restart_reason;
  }
  records_.emplace(saved.pod_uid, std::move(record));
  return true;
}

void Reconciler::save(const Record& record, std::string_view completed_reason) {
  // An unbounded capture starts afresh after a restart: nothing to save.
  if (!record.spec.duration && !record.spec.packets) return;
  SavedCapture saved;
  saved.pod_uid = record.pod.uid;
  saved.pod_namespace = record.pod.namespace_;
  saved.pod_name = record.pod.name;
  saved.file_base = record.file_base;
  saved.spec = record.spec;
  saved.sandbox_id = record.sandbox ? record.sandbox->id : "";
  saved.netns_path = record.netns_path;
  saved.began = record.began.value_or(clock_.wallNow());
  saved.completed = record.state == CaptureState::kCompleted;
  saved.completed_reason = std::string(completed_reason);
  saved.counts = record.counts;
  saved.packets_captured = record.packets_before + (record.counts ? record.counts->captured : 0);
  if (absl::Status written = saved_.save(saved); !written.ok()) {
    // The capture runs on; a restart would start it afresh.
    LOG(WARNING) << displayName(record.pod) << ": " << written;
  }
}

int Reconciler::signalAll(int signal) {
  int sent = 0;
  for (const auto& [process, uid] : owners_) {
    // Stopped, not done: a tcpdump -c that exits 0 on this SIGTERM has not met its bound, and
    // its capture goes on after the restart (startFresh()).
    if (auto it = records_.find(uid); it != records_.end()) {
      it->second.state = CaptureState::kStopping;
    }
    sent += launcher_.signal(process, signal).ok();
  }
  return sent;
}

std::vector<std::string> Reconciler::trackedPods() const {
  std::vector<std::string> uids;
  uids.reserve(records_.size());
  for (const auto& [uid, record] : records_) uids.push_back(uid);
  return uids;
}

std::vector<CaptureStatus> Reconciler::captures() const {
  std::vector<CaptureStatus> out;
  out.reserve(records_.size());
  for (const auto& [uid, record] : records_) {
    CaptureStatus status;
    status.pod_uid = uid;
    status.pod_namespace = record.pod.namespace_;
    status.pod_name = record.pod.name;
    status.state = record.state;
    status.files = record.spec.files;
    status.file_path = files_.pathOf(record.file_base);
    status.filter = record.spec.filter;
    status.duration = record.spec.duration;
    status.packet_limit = record.spec.packets;
    status.counts = record.counts;
    status.bytes_on_disk = record.bytes_on_disk;
    status.sandbox_id = record.sandbox ? record.sandbox->id : "";
    status.netns_path = record.netns_path;
    status.pid = record.pid;
    status.restarts = record.restarts;
    status.last_error = record.last_error;
    out.push_back(std::move(status));
  }
  return out;
}

CaptureStats Reconciler::stats() const {
  CaptureStats stats = stats_;
  stats.active = std::count_if(records_.begin(), records_.end(), [](const auto& entry) {
    return entry.second.state == CaptureState::kRunning;
  });
  return stats;
}

namespace {

// Every hexadecimal word of 12 characters or more (a sandbox or container ID, crictl's short ones
// included) as "<id>"; after the first ": " (the failure's details, past what failed and its
// exit status) every run of digits as '#' too.
std::string withoutNumbers(absl::string_view text) {
  const size_t details = text.find(": ");
  std::string out;
  size_t i = 0;
  const auto is_hex = [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); };
  const auto is_alnum = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); };
  const auto is_digit = [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); };
  while (i < text.size()) {
    size_t end = i;
    while (end < text.size() && is_hex(text[end])) ++end;
    const bool whole_word =
        (i == 0 || !is_alnum(text[i - 1])) && (end == text.size() || !is_alnum(text[end]));
    if (end - i >= 12 && whole_word) {
      out += "<id>";
      i = end;
    } else if (details != absl::string_view::npos && i > details && is_digit(text[i])) {
      out += '#';
      while (i < text.size() && is_digit(text[i])) ++i;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace

bool sameFailure(absl::string_view a, absl::string_view b) {
  return withoutNumbers(a) == withoutNumbers(b);
}

}  // namespace capture

#include "capture/reconciler.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "glog/logging.h"

namespace capture {
namespace {

std::string displayName(const k8s::ObjectReference& pod) {
  return absl::StrCat(pod.namespace_, "/", pod.name);
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
      {"sandboxId", status.sandbox_id},
      {"netnsPath", status.netns_path},
      {"pid", status.pid},
      {"restarts", status.restarts},
      {"lastError", status.last_error},
  };
}

Reconciler::Reconciler(CaptureOptions options, cri::SandboxResolver& resolver, k8s::PodLister& pods,
                       k8s::EventSink& events, proc::ProcessLauncher& launcher,
                       const base::Clock& clock)
    : options_(std::move(options)),
      resolver_(resolver),
      pods_(pods),
      events_(events),
      launcher_(launcher),
      clock_(clock),
      files_(options_.capture_dir) {}

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
  } else if (auto files = parseCaptureAnnotation(value->second, options_.max_files); !files.ok()) {
    desire.why_not = std::string(files.status().message());
    desire.notice_reason = kReasonInvalidAnnotation;
    desire.notice = absl::StrCat(files.status().message(), "; no capture runs");
  } else if (pod->host_network || host_network_pods_.contains(pod_uid)) {
    desire.why_not = "the Pod uses the host network";
    desire.notice_reason = kReasonFailed;
    desire.notice =
        "no capture: the Pod uses the node's network namespace (hostNetwork), so its traffic "
        "is the node's; capture on the node instead";
  } else {
    desire.wanted = true;
    desire.files = *files;
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
  if (!desire.wanted) {
    if (it != records_.end()) endCapture(it, desire.why_not);
    noticeOnce(pod_uid, pod, desire);
    return std::nullopt;
  }
  notices_.erase(pod_uid);
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
  return ensureRunning(it->second, desire.files);
}

absl::StatusOr<Reconciler::Records::iterator> Reconciler::createRecord(const k8s::Pod& pod) {
  Record record;
  record.pod = k8s::referenceTo(pod);
  // No jitter: the delays are exactly backoff_initial, twice that, ... up to backoff_max.
  record.backoff = base::Backoff(options_.backoff_initial, options_.backoff_max, /*jitter=*/0);

  // A Pod recreated under the same name (a new UID: StatefulSets do this) takes over the
  // capture of its predecessor, whose reconcile may simply not have run yet.
  auto predecessor = std::find_if(records_.begin(), records_.end(), [&](const auto& entry) {
    return entry.second.pod.namespace_ == pod.namespace_ && entry.second.pod.name == pod.name;
  });
  if (predecessor != records_.end()) {
    Record& old = predecessor->second;
    LOG(INFO) << "Pod " << displayName(record.pod) << " recreated: UID " << old.pod.uid << " -> "
              << pod.uid;
    stopProcess(old);
    deleteFiles(old);
    if (old.everStarted()) {
      record.next_start = NextStart::kAnnounceRestart;
      record.restart_reason = absl::StrCat("the Pod was recreated (previous UID ", old.pod.uid,
                                           ", sandbox ", old.sandbox_id, ")");
    }
    records_.erase(predecessor);
  }

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

std::optional<base::Duration> Reconciler::ensureRunning(Record& record, int files) {
  if (!record.process) {
    record.files = files;
    if (auto wait = untilRetry(record)) return wait;
  }
  auto sandbox = resolver_.resolve(record.pod.uid);
  if (!sandbox.ok()) return onResolveFailure(record, sandbox.status());
  if (record.everStarted() && sandbox->id != record.sandbox_id) {
    // The capture moves, whether tcpdump still runs in the old sandbox or already ended with it
    // (stopping a sandbox takes its interface away) before the new one was READY.
    prepareRestart(
        record, *sandbox,
        absl::StrCat("the sandbox changed from ", record.sandbox_id, " to ", sandbox->id));
  } else if (record.process && files != record.files) {
    prepareRestart(record, *sandbox,
                   absl::StrCat("the file count changed from ", record.files, " to ", files));
  }
  if (record.process) return std::nullopt;
  record.files = files;
  return launch(record, *sandbox);
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
      endCapture(records_.find(uid), desire.why_not);
      noticeOnce(uid, pod, desire);
      return std::nullopt;
    }
    case cri::ResolveFailure::kNoSandbox:
    case cri::ResolveFailure::kNoReadySandbox:
    case cri::ResolveFailure::kNetnsClosed:
      // Normal while a Pod starts, or while the kubelet replaces its sandbox: a running
      // tcpdump keeps going until a new READY sandbox shows up.
      VLOG(1) << displayName(record.pod) << ": " << status;
      if (!record.process && record.state != CaptureState::kBackoff) {
        record.state = CaptureState::kPending;
      }
      return options_.sandbox_retry;
    default:
      if (record.process) return std::nullopt;  // keep capturing; the resync looks again
      return fail(record, absl::StrCat("cannot look up the Pod's sandbox in the container "
                                       "runtime: ",
                                       status.message()));
  }
}

std::optional<base::Duration> Reconciler::launch(Record& record, const cri::SandboxInfo& sandbox) {
  proc::LaunchSpec spec;
  spec.owner = record.pod.uid;
  spec.argv = options_.tcpdump.argv(record.files, files_.pathOf(record.file_base));
  spec.netns_path = sandbox.netns_path;
  spec.sandbox_pid = sandbox.pid;
  spec.sandbox_id = sandbox.id;
  auto launched = launcher_.start(spec);
  if (!launched.ok()) {
    return fail(record, absl::StrCat("cannot start tcpdump in sandbox ", sandbox.id, ": ",
                                     launched.status().message()));
  }
  record.process = launched->id;
  record.pid = launched->pid;
  record.started_at = clock_.now();
  record.sandbox_id = sandbox.id;
  record.netns_path = launched->netns_path;
  record.state = CaptureState::kRunning;
  record.last_error.clear();
  ++stats_.started;
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
  return std::nullopt;
}

void Reconciler::prepareRestart(Record& record, const cri::SandboxInfo& sandbox, std::string why) {
  LOG(INFO) << displayName(record.pod) << ": restarting capture: " << why;
  stopProcess(record);
  deleteFiles(record);
  // Bound to the new sandbox from now on, started or not: retries of a start that fails there
  // are the same failure, backed off and reported once.
  record.sandbox_id = sandbox.id;
  record.netns_path = sandbox.netns_path;
  record.backoff.reset();
  record.last_failure_reported.clear();
  record.next_start = NextStart::kAnnounceRestart;
  // A restart still pending (tcpdump's exit, an earlier change) is part of this one's story.
  if (!record.restart_reason.empty()) absl::StrAppend(&why, " (", record.restart_reason, ")");
  record.restart_reason = std::move(why);
}

void Reconciler::recordExit(const proc::ProcessExit& exit) {
  auto it = records_.find(exit.owner);
  if (it == records_.end() || it->second.process != exit.id) return;  // already stopped
  Record& record = it->second;
  record.process.reset();
  record.pid = 0;
  if (clock_.now() - record.started_at >= options_.stable_after) {
    record.backoff.reset();
    record.last_failure_reported.clear();
  }
  std::string message = absl::StrCat("tcpdump ", exit.status.describe());
  if (const std::string errors = tcpdumpErrorLines(exit.stderr_tail); !errors.empty()) {
    absl::StrAppend(&message, ": ", errors);
  }
  if (sandboxWentAway(record)) {
    // Stopping a sandbox takes the Pod's interface away, and tcpdump with it ("The interface
    // disappeared"): the kubelet replacing the sandbox, or the Pod going, not a failure. No
    // Warning and no backoff: the next reconcile moves the capture into the new sandbox (and
    // says so with CaptureRestarted), or ends it with the Pod.
    LOG(INFO) << displayName(record.pod) << ": " << message << ", with its sandbox "
              << record.sandbox_id << "; waiting for the Pod's next sandbox";
    record.state = CaptureState::kPending;
    return;
  }
  const bool reported = message != record.last_failure_reported;
  LOG(WARNING) << displayName(record.pod) << ": " << message;
  fail(record, message);
  record.next_start = reported ? NextStart::kAnnounceRestart : NextStart::kQuiet;
  record.restart_reason = absl::StrCat("tcpdump ", exit.status.describe());
}

bool Reconciler::sandboxWentAway(const Record& record) {
  auto sandbox = resolver_.resolve(record.pod.uid);
  if (sandbox.ok()) {
    return sandbox->id != record.sandbox_id;
  }
  switch (cri::failureOf(sandbox.status())) {
    case cri::ResolveFailure::kNoSandbox:
    case cri::ResolveFailure::kNoReadySandbox:
    case cri::ResolveFailure::kNetnsClosed:
      return true;
    default:
      return false;  // the runtime cannot tell: count it as tcpdump's own failure
  }
}

base::Duration Reconciler::fail(Record& record, const std::string& message) {
  ++stats_.failed;
  const base::Duration delay = record.backoff.next();
  record.state = CaptureState::kBackoff;
  record.retry_at = clock_.now() + delay;
  record.last_error = message;
  if (message != record.last_failure_reported) {
    record.last_failure_reported = message;
    emit(record.pod, k8s::EventType::kWarning, kReasonFailed,
         absl::StrCat(message, "; retrying with backoff"));
  }
  return delay;
}

void Reconciler::endCapture(Records::iterator it, const std::string& why) {
  Record& record = it->second;
  LOG(INFO) << displayName(record.pod) << ": stopping capture: " << why;
  stopProcess(record);
  const std::string deleted = deleteFiles(record);
  if (record.everStarted()) {
    ++stats_.stopped;
    emit(record.pod, k8s::EventType::kNormal, kReasonStopped,
         absl::StrCat("Stopped: ", why, "; ", deleted));
  }
  records_.erase(it);
}

void Reconciler::stopProcess(Record& record) {
  if (!record.process) return;
  auto exit = launcher_.stop(*record.process, options_.stop_grace);
  if (exit.ok()) {
    VLOG(1) << displayName(record.pod) << ": tcpdump " << exit->status.describe();
  } else if (!absl::IsNotFound(exit.status())) {
    LOG(WARNING) << displayName(record.pod) << ": stopping tcpdump: " << exit.status();
  }
  record.process.reset();
  record.pid = 0;
  record.state = CaptureState::kPending;
}

std::string Reconciler::deleteFiles(const Record& record) {
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
  const std::vector<std::string> names = rotationFileNames(record.file_base, record.files);
  std::string where = files_.pathOf(names.front());
  if (names.size() > 1) absl::StrAppend(&where, " ... ", names.back());
  std::string text =
      absl::StrCat("tcpdump (pid ", record.pid, ") writes ", where, " (", record.files,
                   record.files == 1 ? " file" : " files", " of 1 MB, rotating) in sandbox ",
                   record.sandbox_id, ", netns ", record.netns_path);
  if (!record.file_note.empty()) absl::StrAppend(&text, " (", record.file_note, ")");
  return text;
}

void Reconciler::emit(const k8s::ObjectReference& pod, k8s::EventType type, const char* reason,
                      const std::string& message) {
  VLOG(1) << displayName(pod) << " " << reason << ": " << message;
  events_.emit(pod, type, reason, message);
}

absl::Status Reconciler::startFresh() {
  auto removed = files_.removeAllCaptureFiles();
  if (!removed.ok()) return removed.status();
  std::vector<std::pair<k8s::Pod, int>> wanted;  // with its file count
  for (k8s::Pod& pod : pods_.list()) {
    const Desire desire = desireOf(pod.uid, pod);
    if (desire.wanted) wanted.emplace_back(std::move(pod), desire.files);
  }
  std::sort(wanted.begin(), wanted.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.creation_timestamp, a.first.namespace_, a.first.name) <
           std::tie(b.first.creation_timestamp, b.first.namespace_, b.first.name);
  });
  for (const auto& [pod, files] : wanted) {
    // A Pod left without a usable file name gets no record here; its reconcile() says why.
    auto created = createRecord(pod);
    if (created.ok()) (*created)->second.files = files;
  }
  LOG(INFO) << "start-up: deleted " << removed->size() << " capture files left in " << files_.dir()
            << (removed->empty() ? "" : ": ") << absl::StrJoin(*removed, ", ") << "; "
            << records_.size() << " Pods want a capture";
  return absl::OkStatus();
}

void Reconciler::stopAll() {
  for (auto& [uid, record] : records_) stopProcess(record);
  records_.clear();
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
    out.push_back(CaptureStatus{uid, record.pod.namespace_, record.pod.name, record.state,
                                record.files, files_.pathOf(record.file_base), record.sandbox_id,
                                record.netns_path, record.pid, record.restarts, record.last_error});
  }
  return out;
}

CaptureStats Reconciler::stats() const {
  CaptureStats stats = stats_;
  stats.active = std::count_if(records_.begin(), records_.end(),
                               [](const auto& entry) { return entry.second.process.has_value(); });
  return stats;
}

}  // namespace capture

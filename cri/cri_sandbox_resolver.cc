#include "cri/cri_sandbox_resolver.h"

#include <map>
#include <set>
#include <string>

#include "cri/sandbox_status.h"
#include "proc/netns.h"

namespace cri {

// The labels the kubelet puts on every sandbox it creates.
constexpr char kPodUidLabel[] = "io.kubernetes.pod.uid";
constexpr char kPodNamespaceLabel[] = "io.kubernetes.pod.namespace";
constexpr char kPodNameLabel[] = "io.kubernetes.pod.name";
// Bounds the cache of resolved sandboxes: far above the pods of one node, and refilling it costs
// one PodSandboxStatus per live capture. Every snapshot() (each resync) also drops the sandboxes
// the runtime no longer lists, so in practice it holds the node's live ones.
constexpr size_t kMaxCachedSandboxes = 4096;

namespace {

// Whether the network namespace of a resolved sandbox can still be entered: its path, or when
// the runtime gave none, its process's /proc/<pid>/ns/net (which must belong to the sandbox).
absl::Status checkNetns(const SandboxInfo& info) {
  if (!info.netns_path.empty()) {
    return proc::isNetworkNamespace(info.netns_path)
               ? absl::OkStatus()
               : absl::FailedPreconditionError(info.netns_path + " is no network namespace");
  }
  auto opened = proc::openSandboxNetns("", info.pid, info.id);
  return opened.ok() ? absl::OkStatus() : opened.status();
}

}  // namespace

absl::StatusOr<SandboxInfo> CriSandboxResolver::resolve(std::string_view pod_uid) {
  runtime::v1::PodSandboxFilter filter;
  (*filter.mutable_label_selector())[kPodUidLabel] = std::string(pod_uid);
  return resolveFiltered(filter, "pod uid " + std::string(pod_uid));
}

absl::StatusOr<SandboxInfo> CriSandboxResolver::resolveByName(std::string_view pod_namespace,
                                                              std::string_view pod_name) {
  runtime::v1::PodSandboxFilter filter;
  (*filter.mutable_label_selector())[kPodNamespaceLabel] = std::string(pod_namespace);
  (*filter.mutable_label_selector())[kPodNameLabel] = std::string(pod_name);
  return resolveFiltered(filter, "pod " + std::string(pod_namespace) + "/" + std::string(pod_name));
}

absl::StatusOr<SandboxInfo> CriSandboxResolver::resolveFiltered(
    const runtime::v1::PodSandboxFilter& filter, std::string_view pod) {
  auto list = client_.listPodSandbox(filter);
  if (!list.ok()) return list.status();
  return resolveIn(*list, pod);
}

std::vector<absl::StatusOr<SandboxInfo>> CriSandboxResolver::resolveAll(
    const std::vector<std::string>& pod_uids) {
  if (pod_uids.size() == 1) return {resolve(pod_uids.front())};
  std::vector<absl::StatusOr<SandboxInfo>> answers;
  auto list = client_.listPodSandbox({});
  if (!list.ok()) {
    answers.assign(pod_uids.size(), list.status());
    return answers;
  }
  std::map<std::string, runtime::v1::ListPodSandboxResponse> by_uid;
  for (const std::string& uid : pod_uids) by_uid[uid];
  for (const runtime::v1::PodSandbox& sandbox : list->items()) {
    const auto uid = sandbox.labels().find(kPodUidLabel);
    if (uid == sandbox.labels().end()) continue;
    if (auto wanted = by_uid.find(uid->second); wanted != by_uid.end()) {
      *wanted->second.add_items() = sandbox;
    }
  }
  for (const std::string& uid : pod_uids)
    answers.push_back(resolveIn(by_uid[uid], "pod uid " + uid));
  return answers;
}

absl::StatusOr<SandboxInfo> CriSandboxResolver::resolveIn(
    const runtime::v1::ListPodSandboxResponse& list, std::string_view pod) {
  auto chosen = newestReadySandbox(list, pod);
  if (!chosen.ok()) return chosen.status();
  const std::string id = (*chosen)->id();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto cached = by_sandbox_id_.find(id); cached != by_sandbox_id_.end()) {
      // A netns removed under a READY sandbox (or one we cannot see) goes back to containerd,
      // which says why.
      if (checkNetns(cached->second).ok()) return cached->second;
      by_sandbox_id_.erase(cached);
    }
  }

  auto status = client_.podSandboxStatus(id, /*verbose=*/true);
  if (absl::IsNotFound(status.status())) {
    // Removed between the two calls: the pod has no sandbox now.
    return resolveError(ResolveFailure::kNoSandbox, "sandbox " + id + " of " + std::string(pod) +
                                                        " was removed while being resolved");
  }
  if (!status.ok()) return status.status();
  auto info = sandboxInfoFromStatus(*status);
  if (!info.ok()) return info.status();
  if (info->state != SandboxState::kReady) {
    // Stopped between the two calls (the kubelet is replacing it).
    return resolveError(ResolveFailure::kNoReadySandbox,
                        "sandbox " + id + " of " + std::string(pod) + " is no longer READY");
  }
  if (info->netns_path.empty()) {
    // The runtime named only the sandbox's process (containerd 2.x without runtimeSpec and
    // NetNSPath, CRI-O without a path): usable only if /proc shows that process.
    if (absl::Status usable = checkNetns(*info); !usable.ok()) {
      return resolveError(ResolveFailure::kOther,
                          "sandbox " + id + " of " + std::string(pod) +
                              " reports no network namespace path, only its process (pid " +
                              std::to_string(info->pid) +
                              "), which cannot be used: " + std::string(usable.message()));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (by_sandbox_id_.size() >= kMaxCachedSandboxes) by_sandbox_id_.clear();
  by_sandbox_id_.insert_or_assign(id, *info);
  return info;
}

absl::StatusOr<SandboxSnapshot> CriSandboxResolver::snapshot() {
  auto list = client_.listPodSandbox({});
  if (!list.ok()) return list.status();
  SandboxSnapshot snapshot;
  std::map<std::string, int64_t> newest_created;
  std::set<std::string> listed;
  for (const runtime::v1::PodSandbox& sandbox : list->items()) {
    listed.insert(sandbox.id());
    const auto uid = sandbox.labels().find(kPodUidLabel);
    if (uid == sandbox.labels().end()) continue;  // not the kubelet's
    std::string& newest = snapshot.newest_ready[uid->second];
    if (sandbox.state() != runtime::v1::SANDBOX_READY) continue;
    auto [created, first] = newest_created.try_emplace(uid->second, sandbox.created_at());
    if (first || sandbox.created_at() > created->second) {
      created->second = sandbox.created_at();
      newest = sandbox.id();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(by_sandbox_id_, [&](const auto& entry) { return !listed.contains(entry.first); });
  return snapshot;
}

}  // namespace cri

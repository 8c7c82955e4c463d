#include "cri/sandbox_status.h"

#include <nlohmann/json.hpp>
#include <string>

#include "base/short_id.h"
#include "cri/sandbox_resolver.h"

namespace cri {

using base::shortId;

namespace {

// The parts of containerd's verbose info that we use, or the reason it cannot be used.
struct VerboseInfo {
  std::string netns_path;  // empty: no network namespace of the pod's own
  bool netns_closed = false;
  int64_t pid = 0;
};

absl::StatusOr<VerboseInfo> parseVerboseInfo(const std::string& id, const std::string& text) {
  const auto malformed = [&](const std::string& why) {
    return resolveError(ResolveFailure::kMalformedStatus,
                        "sandbox " + shortId(id) + ": verbose info " + why);
  };
  try {
    const nlohmann::json info = nlohmann::json::parse(text);
    if (!info.is_object()) return malformed("is not a JSON object");
    VerboseInfo out;
    if (auto it = info.find("pid"); it != info.end()) out.pid = it->get<int64_t>();
    if (auto it = info.find("netNamespaceClosed"); it != info.end()) {
      out.netns_closed = it->get<bool>();
    }
    const auto spec = info.find("runtimeSpec");
    if (spec == info.end() || !spec->is_object()) return malformed("has no runtimeSpec");
    // An OCI spec without linux.namespaces shares every namespace with the host.
    const nlohmann::json namespaces =
        spec->value("/linux/namespaces"_json_pointer, nlohmann::json::array());
    if (!namespaces.is_array())
      return malformed("has a runtimeSpec.linux.namespaces that is no list");
    for (const auto& ns : namespaces) {
      if (ns.value("type", "") == "network") out.netns_path = ns.value("path", "");
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return malformed(std::string("cannot be read: ") + e.what());
  }
}

}  // namespace

absl::StatusOr<const runtime::v1::PodSandbox*> newestReadySandbox(
    const runtime::v1::ListPodSandboxResponse& list, std::string_view pod) {
  if (list.items().empty()) {
    return resolveError(ResolveFailure::kNoSandbox,
                        "the runtime has no sandbox for " + std::string(pod));
  }
  const runtime::v1::PodSandbox* newest = nullptr;
  for (const auto& sandbox : list.items()) {
    if (sandbox.state() != runtime::v1::SANDBOX_READY) continue;
    if (newest == nullptr || sandbox.created_at() > newest->created_at()) newest = &sandbox;
  }
  if (newest != nullptr) return newest;

  std::string found;
  for (const auto& sandbox : list.items()) {
    if (!found.empty()) found += ", ";
    found += shortId(sandbox.id()) + " (" + runtime::v1::PodSandboxState_Name(sandbox.state()) +
             ", attempt " + std::to_string(sandbox.metadata().attempt()) + ")";
  }
  return resolveError(ResolveFailure::kNoReadySandbox,
                      "no READY sandbox for " + std::string(pod) + "; found " + found);
}

absl::StatusOr<SandboxInfo> sandboxInfoFromStatus(
    const runtime::v1::PodSandboxStatusResponse& response) {
  if (!response.has_status() || response.status().id().empty()) {
    return resolveError(ResolveFailure::kMalformedStatus,
                        "PodSandboxStatus answer has no sandbox status");
  }
  const runtime::v1::PodSandboxStatus& status = response.status();
  const std::string& id = status.id();
  if (status.linux().namespaces().options().network() == runtime::v1::NODE) {
    return resolveError(ResolveFailure::kHostNetwork,
                        "sandbox " + shortId(id) + " uses the node's network namespace");
  }
  const auto text = response.info().find("info");
  if (text == response.info().end()) {
    return resolveError(
        ResolveFailure::kMalformedStatus,
        "sandbox " + shortId(id) + ": PodSandboxStatus has no verbose info (key \"info\")");
  }
  auto verbose = parseVerboseInfo(id, text->second);
  if (!verbose.ok()) return verbose.status();
  if (verbose->netns_path.empty()) {
    return resolveError(ResolveFailure::kHostNetwork,
                        "sandbox " + shortId(id) + " has no network namespace path of its own");
  }
  if (verbose->netns_closed) {
    return resolveError(
        ResolveFailure::kNetnsClosed,
        "sandbox " + shortId(id) + ": network namespace " + verbose->netns_path + " is closed");
  }

  SandboxInfo info;
  info.id = id;
  info.state =
      status.state() == runtime::v1::SANDBOX_READY ? SandboxState::kReady : SandboxState::kNotReady;
  info.created_at_ns = status.created_at();
  info.attempt = status.metadata().attempt();
  info.pod_name = status.metadata().name();
  info.pod_namespace = status.metadata().namespace_();
  info.pod_uid = status.metadata().uid();
  info.netns_path = verbose->netns_path;
  info.pid = verbose->pid;
  info.pod_ip = status.network().ip();
  return info;
}

}  // namespace cri

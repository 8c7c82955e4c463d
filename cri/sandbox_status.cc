#include "cri/sandbox_status.h"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/short_id.h"
#include "cri/sandbox_resolver.h"

namespace cri {

using base::shortId;
using nlohmann::json;

namespace {

// CRI's NamespaceMode NODE as Go's encoding/json writes the enum inside a PodSandboxConfig: a
// number.
constexpr int kNamespaceModeNode = 2;

// What the verbose info says of the sandbox's network, or why it says nothing usable.
struct VerboseInfo {
  std::string netns_path;  // empty: only `pid` (if > 0) leads to the netns
  int64_t pid = 0;         // 0 when absent
  bool pid_given = false;
  bool netns_closed = false;
  bool host_network = false;
  std::string host_network_why;      // when host_network
  std::vector<std::string> missing;  // why each source gave no path, in the order tried
};

// A malformed answer: `what` names the field and what is wrong with it.
class Malformed {
 public:
  explicit Malformed(std::string what) : what(std::move(what)) {}
  std::string what;
};

std::string typeOf(const json& value) {
  switch (value.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "a list";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a fractional number";
    default:
      return "null";
  }
}

// The member `key` of `object`, or nullptr when absent or null (Go's encoding of a nil pointer).
const json* member(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

// Why `member(object, key)` gave nothing: "no <name>", or "<name> is null" (Go's nil pointer).
std::string absence(const json& object, const char* key, const std::string& name) {
  return object.contains(key) ? name + " is null" : "no " + name;
}

// The member `key` of `object` that must be an object when present.
const json* objectMember(const json& object, const char* key, const std::string& name) {
  const json* value = member(object, key);
  if (value != nullptr && !value->is_object()) {
    throw Malformed(absl::StrCat(name, " is ", typeOf(*value), ", not an object"));
  }
  return value;
}

// The member `key` of `object` that must be a string when present; "" when absent.
std::string stringMember(const json& object, const char* key, const std::string& name) {
  const json* value = member(object, key);
  if (value == nullptr) return "";
  if (!value->is_string()) {
    throw Malformed(absl::StrCat(name, " is ", typeOf(*value), ", not a string"));
  }
  return value->get<std::string>();
}

// Whether a PodSandboxConfig (Go JSON: snake_case, enums as numbers) asks for the node's
// network. Read leniently: the config is a marker, not a source, so an odd shape is no error.
bool configSaysNodeNetwork(const json* config) {
  if (config == nullptr || !config->is_object()) return false;
  const json* at = config;
  for (const char* key : {"linux", "security_context", "namespace_options"}) {
    at = member(*at, key);
    if (at == nullptr || !at->is_object()) return false;
  }
  const json* network = member(*at, "network");
  if (network == nullptr) return false;
  return (network->is_number_integer() && network->get<int64_t>() == kNamespaceModeNode) ||
         (network->is_string() && network->get<std::string>() == "NODE");
}

// 1. runtimeSpec.linux.namespaces[type=network].path: containerd 1.x and 2.x (when the sandbox
// container exists), CRI-O with or without its infra container. Sets host_network when the spec
// lists namespaces and no network one: the OCI spec's way of sharing the host's.
bool pathFromRuntimeSpec(const json& info, VerboseInfo& out) {
  const json* spec = objectMember(info, "runtimeSpec", "runtimeSpec");
  if (spec == nullptr) {
    out.missing.push_back(absence(info, "runtimeSpec", "runtimeSpec"));
    return false;
  }
  const json* spec_linux = objectMember(*spec, "linux", "runtimeSpec.linux");
  const json* namespaces = spec_linux == nullptr ? nullptr : member(*spec_linux, "namespaces");
  if (namespaces == nullptr) {
    out.missing.push_back("runtimeSpec has no linux.namespaces");
    return false;
  }
  if (!namespaces->is_array()) {
    throw Malformed(
        absl::StrCat("runtimeSpec.linux.namespaces is ", typeOf(*namespaces), ", not a list"));
  }
  // An entry we cannot read might have been the network one: an error only when no entry gives
  // the path.
  std::string unreadable;
  bool network_listed = false;
  for (size_t i = 0; i < namespaces->size(); ++i) {
    const json& ns = (*namespaces)[i];
    const std::string name = absl::StrCat("runtimeSpec.linux.namespaces[", i, "]");
    if (!ns.is_object()) {
      if (unreadable.empty())
        unreadable = absl::StrCat(name, " is ", typeOf(ns), ", not an object");
      continue;
    }
    const json* type = member(ns, "type");
    if (type == nullptr || !type->is_string()) {
      if (unreadable.empty()) {
        unreadable = type == nullptr
                         ? absl::StrCat(name, " has no type")
                         : absl::StrCat(name, ".type is ", typeOf(*type), ", not a string");
      }
      continue;
    }
    if (type->get<std::string>() != "network") continue;
    network_listed = true;
    std::string path = stringMember(ns, "path", name + ".path");
    if (!path.empty()) {
      out.netns_path = std::move(path);
      return true;
    }
  }
  if (!unreadable.empty()) throw Malformed(unreadable);
  if (network_listed) {
    // A network namespace without a path is one the OCI runtime created itself: the pod's own,
    // reachable only through its process.
    out.missing.push_back("runtimeSpec's network namespace has no path");
  } else {
    out.host_network = true;
    out.host_network_why = "its runtimeSpec lists no network namespace";
  }
  return false;
}

// 2. sandboxMetadata.Metadata.NetNSPath: containerd 2.x, whose CRI store keeps the sandbox's
// metadata in a versioned wrapper ({"Version":"v1","Metadata":{...}}) and reports it even when
// runtimeSpec is null (a sandbox without a container, or that its controller no longer knows).
bool pathFromSandboxMetadata(const json& info, VerboseInfo& out) {
  const json* wrapper = objectMember(info, "sandboxMetadata", "sandboxMetadata");
  if (wrapper == nullptr) {
    out.missing.push_back(absence(info, "sandboxMetadata", "sandboxMetadata"));
    return false;
  }
  const json* metadata = objectMember(*wrapper, "Metadata", "sandboxMetadata.Metadata");
  if (metadata == nullptr) {
    const json* version = member(*wrapper, "Version");
    out.missing.push_back(version != nullptr ? absl::StrCat("sandboxMetadata (Version ",
                                                            version->dump(), ") has no Metadata")
                                             : "sandboxMetadata has no Metadata");
    return false;
  }
  std::string path = stringMember(*metadata, "NetNSPath", "sandboxMetadata.Metadata.NetNSPath");
  if (path.empty()) {
    out.missing.push_back("sandboxMetadata.Metadata.NetNSPath is empty");
    return false;
  }
  out.netns_path = std::move(path);
  return true;
}

// The sandbox process's host pid: 0 when absent (CRI-O without its infra container) or unknown.
int64_t readPid(const json& info) {
  const json* pid = member(info, "pid");
  if (pid == nullptr) return 0;
  if (pid->is_number_unsigned()) {
    if (pid->get<uint64_t>() > static_cast<uint64_t>(INT32_MAX)) {
      throw Malformed(absl::StrCat("pid ", pid->dump(), " is out of range"));
    }
    return pid->get<int64_t>();
  }
  if (pid->is_number_integer()) {
    const int64_t value = pid->get<int64_t>();
    if (value < 0) throw Malformed(absl::StrCat("pid ", value, " is negative"));
    return value;
  }
  throw Malformed(absl::StrCat("pid is ", typeOf(*pid), " (", pid->dump(), "), not an integer"));
}

// The top-level keys of `info`, for an operator to see which runtime's shape this was.
std::string keysOf(const json& info) {
  if (info.empty()) return "an empty object";
  std::vector<std::string> keys;
  for (const auto& [key, value] : info.items()) keys.push_back(key);
  return absl::StrCat("keys: ", absl::StrJoin(keys, ", "));
}

// Reads the fields used, in the order of the header; throws Malformed naming a field at fault.
VerboseInfo readVerboseInfo(const json& info) {
  if (!info.is_object()) throw Malformed(absl::StrCat("is ", typeOf(info), ", not a JSON object"));
  VerboseInfo out;
  out.pid = readPid(info);
  out.pid_given = member(info, "pid") != nullptr;
  if (const json* closed = member(info, "netNamespaceClosed")) {
    if (!closed->is_boolean()) {
      throw Malformed(absl::StrCat("netNamespaceClosed is ", typeOf(*closed), ", not a boolean"));
    }
    out.netns_closed = closed->get<bool>();
  }
  // The sandbox's own config (containerd) says NODE for a hostNetwork pod whatever else is there.
  const json* metadata_config = nullptr;
  if (const json* wrapper = member(info, "sandboxMetadata"); wrapper && wrapper->is_object()) {
    if (const json* metadata = member(*wrapper, "Metadata"); metadata && metadata->is_object()) {
      metadata_config = member(*metadata, "Config");
    }
  }
  if (configSaysNodeNetwork(member(info, "config")) || configSaysNodeNetwork(metadata_config)) {
    out.host_network = true;
    out.host_network_why = "its config asks for the node's network (NamespaceMode NODE)";
    return out;
  }
  if (pathFromRuntimeSpec(info, out) || out.host_network) return out;
  if (pathFromSandboxMetadata(info, out)) return out;
  // 3. Only the sandbox process: its /proc/<pid>/ns/net, checked (visible, the sandbox's own
  // process, a network namespace) where it is opened. Nothing to add to `missing` otherwise:
  // the caller names the pid.
  return out;
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
  const std::string sandbox = "sandbox " + shortId(id);
  if (status.linux().namespaces().options().network() == runtime::v1::NODE) {
    return resolveError(ResolveFailure::kHostNetwork,
                        sandbox + " uses the node's network namespace");
  }
  const auto text = response.info().find("info");
  if (text == response.info().end()) {
    std::vector<std::string> keys;
    for (const auto& [key, value] : response.info()) keys.push_back("\"" + key + "\"");
    return resolveError(
        ResolveFailure::kMalformedStatus,
        absl::StrCat(sandbox, ": PodSandboxStatus(verbose) has no verbose info (key \"info\"",
                     keys.empty() ? "; its info map is empty"
                                  : "; its info map has only " + absl::StrJoin(keys, ", "),
                     ")"));
  }
  // "verbose info is ...", "verbose info names ...", "verbose info: <field> is ...".
  const auto malformed = [&](const std::string& why) {
    const bool of_the_whole = why.starts_with("is ") || why.starts_with("names ");
    return resolveError(ResolveFailure::kMalformedStatus,
                        absl::StrCat(sandbox, ": verbose info", of_the_whole ? " " : ": ", why));
  };
  if (text->second.empty()) return malformed("is empty");

  VerboseInfo verbose;
  json parsed;
  try {
    parsed = json::parse(text->second);
  } catch (const json::exception& e) {
    return malformed(absl::StrCat("is not JSON: ", e.what()));
  }
  try {
    verbose = readVerboseInfo(parsed);
  } catch (const Malformed& e) {
    return malformed(e.what);
  } catch (const json::exception& e) {  // not expected: every access above is checked
    return malformed(absl::StrCat("cannot be read: ", e.what()));
  }

  if (verbose.host_network) {
    return resolveError(ResolveFailure::kHostNetwork,
                        absl::StrCat(sandbox, " has no network namespace of its own (",
                                     verbose.host_network_why, ")"));
  }
  if (verbose.netns_closed) {
    return resolveError(
        ResolveFailure::kNetnsClosed,
        absl::StrCat(sandbox, ": network namespace ",
                     verbose.netns_path.empty() ? "" : verbose.netns_path + " ", "is closed"));
  }
  if (verbose.netns_path.empty() && verbose.pid <= 0) {
    verbose.missing.push_back(verbose.pid_given ? "pid 0" : "no pid");
    return malformed(absl::StrCat("names no network namespace: ",
                                  absl::StrJoin(verbose.missing, ", "), " (", keysOf(parsed), ")"));
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
  info.netns_path = verbose.netns_path;
  info.pid = verbose.pid;
  info.pod_ip = status.network().ip();
  return info;
}

}  // namespace cri

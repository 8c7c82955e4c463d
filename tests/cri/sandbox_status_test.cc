#include "cri/sandbox_status.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>
#include <vector>

#include "cri/sandbox_resolver.h"
#include "tests/support/files.h"

namespace cri {
namespace {

// The recorded containerd answer, as it is on the wire: info["info"] is a JSON string.
struct Recorded {
  runtime::v1::PodSandboxStatusResponse response;
  nlohmann::json info;  // decoded info["info"], for tests to edit and re-encode
};

Recorded loadRecorded() {
  const auto doc = nlohmann::json::parse(
      testsupport::readFile(TESTDATA_DIR "/podsandboxstatus-containerd-1.6.20.json"));
  Recorded r;
  const auto parsed = google::protobuf::util::JsonStringToMessage(doc.at("status").dump(),
                                                                  r.response.mutable_status());
  EXPECT_TRUE(parsed.ok()) << parsed.ToString();
  r.info = doc.at("info").at("info");
  (*r.response.mutable_info())["info"] = r.info.dump();
  return r;
}

void setInfo(runtime::v1::PodSandboxStatusResponse& response, const nlohmann::json& info) {
  (*response.mutable_info())["info"] = info.dump();
}

TEST(SandboxInfoFromStatus, ReadsARecordedContainerdAnswer) {
  const Recorded r = loadRecorded();
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, "1b20abcefe70cc96ed19535fdeeb43e47ee3b5b0266fdfef37931368ddd963ba");
  EXPECT_EQ(info->state, SandboxState::kReady);
  EXPECT_EQ(info->created_at_ns, 1795363903616369693);
  EXPECT_EQ(info->attempt, 0u);
  EXPECT_EQ(info->pod_name, "lab-pod");
  EXPECT_EQ(info->pod_namespace, "default");
  EXPECT_EQ(info->pod_uid, "73a3d39b-827d-482d-adbf-6c6bcade6d80");
  EXPECT_EQ(info->netns_path, "/var/run/netns/cni-f3da19b4-b61e-4528-cd65-676dafd5ba7a");
  EXPECT_EQ(info->pid, 14142);
  EXPECT_EQ(info->pod_ip, "10.244.0.2");
}

TEST(SandboxInfoFromStatus, ReportsANotReadyStateWithoutFailing) {
  Recorded r = loadRecorded();
  r.response.mutable_status()->set_state(runtime::v1::SANDBOX_NOTREADY);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, SandboxState::kNotReady);
}

TEST(SandboxInfoFromStatus, HostNetworkByNamespaceMode) {
  Recorded r = loadRecorded();
  r.response.mutable_status()
      ->mutable_linux()
      ->mutable_namespaces()
      ->mutable_options()
      ->set_network(runtime::v1::NODE);
  EXPECT_EQ(failureOf(sandboxInfoFromStatus(r.response).status()), ResolveFailure::kHostNetwork);
}

TEST(SandboxInfoFromStatus, HostNetworkByMissingNetworkNamespace) {
  // What containerd reports for a hostNetwork pod: no "network" entry in the OCI spec.
  Recorded r = loadRecorded();
  auto& namespaces = r.info["runtimeSpec"]["linux"]["namespaces"];
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& ns : namespaces) {
    if (ns["type"] != "network") kept.push_back(ns);
  }
  namespaces = kept;
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kHostNetwork) << info.status();
}

TEST(SandboxInfoFromStatus, HostNetworkByNetworkNamespaceWithoutPath) {
  Recorded r = loadRecorded();
  for (auto& ns : r.info["runtimeSpec"]["linux"]["namespaces"]) {
    if (ns["type"] == "network") ns.erase("path");
  }
  setInfo(r.response, r.info);
  EXPECT_EQ(failureOf(sandboxInfoFromStatus(r.response).status()), ResolveFailure::kHostNetwork);
}

TEST(SandboxInfoFromStatus, ClosedNetns) {
  Recorded r = loadRecorded();
  r.info["netNamespaceClosed"] = true;
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNetnsClosed) << info.status();
  EXPECT_NE(info.status().message().find("cni-f3da19b4"), std::string::npos) << info.status();
}

TEST(SandboxInfoFromStatus, MissingPidIsZeroNotAnError) {
  Recorded r = loadRecorded();
  r.info.erase("pid");
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->pid, 0);
}

TEST(SandboxInfoFromStatus, MalformedAnswersAreMalformedStatus) {
  const std::vector<std::pair<const char*, std::function<void(Recorded&)>>> cases = {
      {"not JSON", [](Recorded& r) { (*r.response.mutable_info())["info"] = "{\"pid\": 1,"; }},
      {"not an object", [](Recorded& r) { (*r.response.mutable_info())["info"] = "[1, 2]"; }},
      {"no verbose info", [](Recorded& r) { r.response.mutable_info()->clear(); }},
      {"another info key only",
       [](Recorded& r) {
         r.response.mutable_info()->clear();
         (*r.response.mutable_info())["config"] = "{}";
       }},
      {"no runtimeSpec",
       [](Recorded& r) {
         r.info.erase("runtimeSpec");
         setInfo(r.response, r.info);
       }},
      {"namespaces not a list",
       [](Recorded& r) {
         r.info["runtimeSpec"]["linux"]["namespaces"] = "network";
         setInfo(r.response, r.info);
       }},
      {"pid not a number",
       [](Recorded& r) {
         r.info["pid"] = "14142";
         setInfo(r.response, r.info);
       }},
      {"netNamespaceClosed not a bool",
       [](Recorded& r) {
         r.info["netNamespaceClosed"] = "no";
         setInfo(r.response, r.info);
       }},
      {"no status", [](Recorded& r) { r.response.clear_status(); }},
      {"no sandbox id", [](Recorded& r) { r.response.mutable_status()->clear_id(); }},
  };
  for (const auto& [name, edit] : cases) {
    SCOPED_TRACE(name);
    Recorded r = loadRecorded();
    edit(r);
    auto info = sandboxInfoFromStatus(r.response);
    EXPECT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
  }
}

runtime::v1::PodSandbox sandbox(const std::string& id, runtime::v1::PodSandboxState state,
                                int64_t created_at, uint32_t attempt) {
  runtime::v1::PodSandbox s;
  s.set_id(id);
  s.set_state(state);
  s.set_created_at(created_at);
  s.mutable_metadata()->set_attempt(attempt);
  return s;
}

TEST(NewestReadySandbox, NoneAtAll) {
  runtime::v1::ListPodSandboxResponse list;
  auto chosen = newestReadySandbox(list, "pod uid u1");
  EXPECT_EQ(failureOf(chosen.status()), ResolveFailure::kNoSandbox);
  EXPECT_NE(chosen.status().message().find("pod uid u1"), std::string::npos);
}

TEST(NewestReadySandbox, NoneReadyListsWhatWasFound) {
  runtime::v1::ListPodSandboxResponse list;
  *list.add_items() = sandbox("aaaaaaaaaaaaaaaaaaaa", runtime::v1::SANDBOX_NOTREADY, 10, 0);
  *list.add_items() = sandbox("bbbbbbbbbbbbbbbbbbbb", runtime::v1::SANDBOX_NOTREADY, 20, 1);
  auto chosen = newestReadySandbox(list, "pod uid u1");
  EXPECT_EQ(failureOf(chosen.status()), ResolveFailure::kNoReadySandbox);
  const std::string message(chosen.status().message());
  EXPECT_NE(message.find("aaaaaaaaaaaaa (SANDBOX_NOTREADY, attempt 0)"), std::string::npos)
      << message;
  EXPECT_NE(message.find("bbbbbbbbbbbbb (SANDBOX_NOTREADY, attempt 1)"), std::string::npos)
      << message;
}

TEST(NewestReadySandbox, NewestOfTheReadyOnes) {
  runtime::v1::ListPodSandboxResponse list;
  *list.add_items() = sandbox("old-ready", runtime::v1::SANDBOX_READY, 10, 0);
  *list.add_items() = sandbox("newest-notready", runtime::v1::SANDBOX_NOTREADY, 40, 2);
  *list.add_items() = sandbox("new-ready", runtime::v1::SANDBOX_READY, 30, 1);
  *list.add_items() = sandbox("older-ready", runtime::v1::SANDBOX_READY, 20, 0);
  auto chosen = newestReadySandbox(list, "pod uid u1");
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->id(), "new-ready");
}

}  // namespace
}  // namespace cri

#include "cri/sandbox_status.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <filesystem>
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

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A PodSandboxStatus answer from testdata, as it is on the wire: info["info"] is a JSON string.
struct Recorded {
  runtime::v1::PodSandboxStatusResponse response;
  nlohmann::json info;  // decoded info["info"], for tests to edit and re-encode
};

void setInfo(runtime::v1::PodSandboxStatusResponse& response, const nlohmann::json& info) {
  (*response.mutable_info())["info"] = info.dump();
}

// `file` under testdata: {"status": <proto3 JSON>, "info": {"info": <object, or its JSON text>}}
// (or crictl inspectp's {"status", "info": <object>}).
Recorded loadFixture(const std::string& file) {
  const auto doc = nlohmann::json::parse(testsupport::readFile(TESTDATA_DIR "/" + file));
  Recorded r;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      doc.at("status").dump(), r.response.mutable_status(), options);
  EXPECT_TRUE(parsed.ok()) << file << ": " << parsed.ToString();
  // Our recordings nest the decoded document under info.info; crictl inspectp prints it as info.
  const nlohmann::json& outer = doc.at("info");
  const nlohmann::json& info = outer.contains("info") ? outer.at("info") : outer;
  r.info = info.is_string() ? nlohmann::json::parse(info.get<std::string>()) : info;
  setInfo(r.response, r.info);
  return r;
}

constexpr char kContainerd16[] = "podsandboxstatus-containerd-1.6.20.json";
constexpr char kContainerd2Ready[] = "containerd-2.x-synthetic-ready.json";
constexpr char kContainerd2NoSpec[] = "containerd-2.x-synthetic-no-runtimespec.json";
constexpr char kCrioInfra[] = "crio-written-from-source-infra.json";
constexpr char kCrioDroppedInfra[] = "crio-written-from-source-dropped-infra.json";
constexpr char kCrioEmpty[] = "crio-written-from-source-empty-info.json";

constexpr char kNetns16[] = "/var/run/netns/cni-f3da19b4-b61e-4528-cd65-676dafd5ba7a";
constexpr char kNetns2[] = "/var/run/netns/cni-0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
constexpr char kNetnsCrio[] = "/var/run/netns/4f8c2a1e-9b3d-4e5f-a6b7-c8d9e0f1a2b3";

Recorded loadRecorded() { return loadFixture(kContainerd16); }

nlohmann::json& networkEntry(nlohmann::json& info) {
  for (auto& ns : info["runtimeSpec"]["linux"]["namespaces"]) {
    if (ns["type"] == "network") return ns;
  }
  ADD_FAILURE() << "no network namespace in the fixture";
  static nlohmann::json none;
  return none;
}

std::string messageOf(const absl::Status& status) { return std::string(status.message()); }

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
  EXPECT_EQ(info->netns_path, kNetns16);
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

// --- containerd 2.x ---------------------------------------------------------------------------

TEST(SandboxInfoFromStatus, Containerd2ReadySandboxFromRuntimeSpec) {
  const Recorded r = loadFixture(kContainerd2Ready);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, "7c41d0e9a2b84f55b0c3d6e1f29a8b7c4d5e6f708192a3b4c5d6e7f8091a2b3c");
  EXPECT_EQ(info->state, SandboxState::kReady);
  EXPECT_EQ(info->pod_name, "web-0");
  EXPECT_EQ(info->pod_namespace, "shop");
  EXPECT_EQ(info->netns_path, kNetns2);
  EXPECT_EQ(info->pid, 31337);
  EXPECT_EQ(info->pod_ip, "10.244.1.7");
}

TEST(SandboxInfoFromStatus, Containerd2WithoutRuntimeSpecUsesSandboxMetadataNetNSPath) {
  const Recorded r = loadFixture(kContainerd2NoSpec);
  ASSERT_TRUE(r.info.at("runtimeSpec").is_null());
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->state, SandboxState::kNotReady);
  EXPECT_EQ(info->netns_path, kNetns2);
  EXPECT_EQ(info->pid, 31337);
}

TEST(SandboxInfoFromStatus, Containerd2WithoutRuntimeSpecKeyAtAll) {
  Recorded r = loadFixture(kContainerd2NoSpec);
  r.info.erase("runtimeSpec");
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, kNetns2);
}

TEST(SandboxInfoFromStatus, RuntimeSpecPathComesBeforeSandboxMetadata) {
  Recorded r = loadFixture(kContainerd2Ready);
  r.info["sandboxMetadata"]["Metadata"]["NetNSPath"] = "/var/run/netns/cni-other";
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, kNetns2);
}

TEST(SandboxInfoFromStatus, NetworkNamespaceWithoutPathFallsBackToSandboxMetadata) {
  Recorded r = loadFixture(kContainerd2Ready);
  networkEntry(r.info).erase("path");
  r.info["sandboxMetadata"]["Metadata"]["NetNSPath"] = "/var/run/netns/cni-from-metadata";
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, "/var/run/netns/cni-from-metadata");
}

TEST(SandboxInfoFromStatus, EmptyNetNSPathFallsBackToThePid) {
  Recorded r = loadFixture(kContainerd2NoSpec);
  r.info["sandboxMetadata"]["Metadata"]["NetNSPath"] = "";
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, "") << "the /proc/<pid>/ns/net fallback is the opener's to check";
  EXPECT_EQ(info->pid, 31337);
}

TEST(SandboxInfoFromStatus, PidAloneIsEnough) {
  // Every path source absent: only the sandbox's process leads to its netns.
  for (const char* fixture : {kContainerd16, kContainerd2NoSpec}) {
    SCOPED_TRACE(fixture);
    Recorded r = loadFixture(fixture);
    r.info.erase("runtimeSpec");
    r.info.erase("sandboxMetadata");
    r.info["pid"] = 4242;
    setInfo(r.response, r.info);
    auto info = sandboxInfoFromStatus(r.response);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->netns_path, "");
    EXPECT_EQ(info->pid, 4242);
  }
}

TEST(SandboxInfoFromStatus, NetworkNamespaceWithoutPathIsNotHostNetwork) {
  // An OCI network namespace without a path is one the runtime creates: the pod's own. With the
  // recorded pid it is reached through /proc; without one, nothing names it.
  Recorded r = loadRecorded();
  networkEntry(r.info).erase("path");
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, "");
  EXPECT_EQ(info->pid, 14142);

  r.info.erase("pid");
  setInfo(r.response, r.info);
  info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
  EXPECT_THAT(messageOf(info.status()),
              AllOf(HasSubstr("runtimeSpec's network namespace has no path"),
                    HasSubstr("no sandboxMetadata"), HasSubstr("no pid")));
}

TEST(SandboxInfoFromStatus, AnUnreadableOtherNamespaceEntryDoesNotHideThePath) {
  Recorded r = loadRecorded();
  r.info["runtimeSpec"]["linux"]["namespaces"][0] = {{"path", "/proc/1/ns/pid"}};
  r.info["runtimeSpec"]["linux"]["namespaces"][1] = "ipc";
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, kNetns16);
}

TEST(SandboxInfoFromStatus, RuntimeSpecWithoutNamespacesIsNotHostNetwork) {
  Recorded r = loadRecorded();
  r.info["runtimeSpec"].erase("linux");
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();  // the pid is left
  EXPECT_EQ(info->netns_path, "");

  r.info["pid"] = 0;
  setInfo(r.response, r.info);
  info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
  EXPECT_THAT(messageOf(info.status()),
              AllOf(HasSubstr("runtimeSpec has no linux.namespaces"), HasSubstr("pid 0")));
}

constexpr char kContainerd219Ready[] = "containerd-2.1.9/sandbox-status-ready.json";
constexpr char kContainerd219ShimKilled[] = "containerd-2.1.9/sandbox-status-shim-killed.json";
constexpr char kNetns219[] = "/var/run/netns/cni-2afaf3aa-0b59-ba43-725c-62aa61c78357";
constexpr char kSandbox219[] = "dd092cb105112a0561e7c307ca274d1e42ffd113217f2f2af530328cc5f1a9a4";

TEST(SandboxInfoFromStatus, RecordedContainerd219ReadySandbox) {
  const Recorded r = loadFixture(kContainerd219Ready);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, kSandbox219);
  EXPECT_EQ(info->state, SandboxState::kReady);
  EXPECT_EQ(info->pod_name, "lab-pod");
  EXPECT_EQ(info->pod_uid, "13ca15e4-4e7d-477b-a4a8-3881e462546c");
  EXPECT_EQ(info->netns_path, kNetns219);
  EXPECT_EQ(info->pid, 5618);
  EXPECT_EQ(info->pod_ip, "10.251.0.2");
}

TEST(SandboxInfoFromStatus, RecordedContainerd219AfterItsShimWasKilled) {
  // 2.1.9 still sends runtimeSpec (the container record outlives its shim), pid 0, "deleted".
  const Recorded r = loadFixture(kContainerd219ShimKilled);
  ASSERT_EQ(r.info.at("processStatus"), "deleted");
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, kSandbox219);
  EXPECT_EQ(info->state, SandboxState::kNotReady);  // the resolver's kNoReadySandbox
  EXPECT_EQ(info->netns_path, kNetns219);
  EXPECT_EQ(info->pid, 0);
}

TEST(SandboxInfoFromStatus, RecordedContainerd219WithoutRuntimeSpecFallsBackToNetNSPath) {
  // The recorded answers with runtimeSpec null or absent, as toDeletedCRISandboxInfo and a
  // sandbox without a container send it.
  for (const char* fixture : {kContainerd219Ready, kContainerd219ShimKilled}) {
    SCOPED_TRACE(fixture);
    Recorded r = loadFixture(fixture);
    r.info["runtimeSpec"] = nullptr;
    setInfo(r.response, r.info);
    auto info = sandboxInfoFromStatus(r.response);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->netns_path, kNetns219);

    r.info.erase("runtimeSpec");
    setInfo(r.response, r.info);
    info = sandboxInfoFromStatus(r.response);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->netns_path, kNetns219);
  }
}

TEST(SandboxInfoFromStatus, RecordedContainerd219WithNothingLeftNamesEverySource) {
  Recorded r = loadFixture(kContainerd219ShimKilled);  // pid 0
  r.info["runtimeSpec"] = nullptr;
  r.info["sandboxMetadata"]["Metadata"]["NetNSPath"] = "";
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
  EXPECT_THAT(messageOf(info.status()),
              AllOf(HasSubstr("sandbox dd092cb105112: verbose info names no network namespace"),
                    HasSubstr("runtimeSpec is null"),
                    HasSubstr("sandboxMetadata.Metadata.NetNSPath is empty"), HasSubstr("pid 0")));
}

// Every answer recorded from containerd 2.1.9 (testdata/containerd-2.1.9/: a ready sandbox, the
// same after its shim was killed, and any recorded later) gives the netns the file itself names.
TEST(SandboxInfoFromStatus, RecordedContainerd219AnswersGiveTheirNetns) {
  const std::filesystem::path dir = TESTDATA_DIR "/containerd-2.1.9";
  std::vector<std::string> files;
  if (std::filesystem::is_directory(dir)) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path().filename());
    }
  }
  if (files.empty()) GTEST_SKIP() << "no recordings in " << dir;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const Recorded r = loadFixture("containerd-2.1.9/" + file);
    using nlohmann::json;
    std::string named;  // what the file names, in the order the parser looks
    const json::json_pointer namespaces("/runtimeSpec/linux/namespaces");
    if (r.info.contains(namespaces) && r.info.at(namespaces).is_array()) {
      for (const auto& ns : r.info.at(namespaces)) {
        if (ns.value("type", "") == "network") named = ns.value("path", "");
      }
    }
    const json::json_pointer netns_path("/sandboxMetadata/Metadata/NetNSPath");
    if (named.empty() && r.info.contains(netns_path) && r.info.at(netns_path).is_string()) {
      named = r.info.at(netns_path).get<std::string>();
    }
    auto info = sandboxInfoFromStatus(r.response);
    if (r.info.value("netNamespaceClosed", false)) {
      EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNetnsClosed) << info.status();
      continue;
    }
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->id, r.response.status().id());
    EXPECT_EQ(info->netns_path, named);
    EXPECT_EQ(info->pid, r.info.value("pid", int64_t{0}));
  }
}

// --- CRI-O (fixtures written from its source) ----------------------------------------------------

TEST(SandboxInfoFromStatus, CrioWithInfraContainer) {
  const Recorded r = loadFixture(kCrioInfra);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->id, "e3a9c1f07b2d4c68a5e0f1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6");
  EXPECT_EQ(info->attempt, 1u);
  EXPECT_EQ(info->netns_path, kNetnsCrio);
  EXPECT_EQ(info->pid, 27182);
  EXPECT_EQ(info->pod_ip, "10.244.2.9");
}

TEST(SandboxInfoFromStatus, CrioWithoutInfraContainerHasNoPid) {
  const Recorded r = loadFixture(kCrioDroppedInfra);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->netns_path, kNetnsCrio);
  EXPECT_EQ(info->pid, 0);
}

TEST(SandboxInfoFromStatus, CrioEmptyInfoNamesEverythingLookedFor) {
  const Recorded r = loadFixture(kCrioEmpty);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
  EXPECT_THAT(messageOf(info.status()),
              AllOf(HasSubstr("sandbox e3a9c1f07b2d4"), HasSubstr("names no network namespace"),
                    HasSubstr("no runtimeSpec"), HasSubstr("no sandboxMetadata"),
                    HasSubstr("no pid"), HasSubstr("an empty object")));
}

TEST(SandboxInfoFromStatus, CrioDroppedInfraWithoutPathNamesTheKeysItHad) {
  Recorded r = loadFixture(kCrioDroppedInfra);
  networkEntry(r.info).erase("path");
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
  EXPECT_THAT(messageOf(info.status()), HasSubstr("(keys: runtimeSpec)"));
}

// --- host network ---------------------------------------------------------------------------

TEST(SandboxInfoFromStatus, HostNetworkByNamespaceMode) {
  for (const char* fixture :
       {kContainerd16, kContainerd2Ready, kContainerd2NoSpec, kCrioInfra, kCrioEmpty}) {
    SCOPED_TRACE(fixture);
    Recorded r = loadFixture(fixture);
    r.response.mutable_status()
        ->mutable_linux()
        ->mutable_namespaces()
        ->mutable_options()
        ->set_network(runtime::v1::NODE);
    EXPECT_EQ(failureOf(sandboxInfoFromStatus(r.response).status()), ResolveFailure::kHostNetwork);
  }
}

TEST(SandboxInfoFromStatus, HostNetworkByMissingNetworkNamespace) {
  // What containerd 1.x and CRI-O put in the spec of a hostNetwork pod: no "network" entry.
  for (const char* fixture : {kContainerd16, kContainerd2Ready, kCrioDroppedInfra}) {
    SCOPED_TRACE(fixture);
    Recorded r = loadFixture(fixture);
    auto& namespaces = r.info["runtimeSpec"]["linux"]["namespaces"];
    nlohmann::json kept = nlohmann::json::array();
    for (const auto& ns : namespaces) {
      if (ns["type"] != "network") kept.push_back(ns);
    }
    namespaces = kept;
    setInfo(r.response, r.info);
    auto info = sandboxInfoFromStatus(r.response);
    EXPECT_EQ(failureOf(info.status()), ResolveFailure::kHostNetwork) << info.status();
    EXPECT_THAT(messageOf(info.status()), HasSubstr("lists no network namespace"));
  }
}

TEST(SandboxInfoFromStatus, HostNetworkByTheConfigInTheInfo) {
  // containerd's config (Go JSON: NamespaceMode NODE is 2), at the top or in sandboxMetadata.
  {
    Recorded r = loadRecorded();
    r.info["config"]["linux"]["security_context"]["namespace_options"]["network"] = 2;
    setInfo(r.response, r.info);
    auto info = sandboxInfoFromStatus(r.response);
    EXPECT_EQ(failureOf(info.status()), ResolveFailure::kHostNetwork) << info.status();
    EXPECT_THAT(messageOf(info.status()), HasSubstr("NamespaceMode NODE"));
  }
  {
    Recorded r = loadFixture(kContainerd2NoSpec);
    r.info.erase("config");
    r.info["sandboxMetadata"]["Metadata"]["Config"]["linux"]["security_context"]
          ["namespace_options"]["network"] = 2;
    r.info["sandboxMetadata"]["Metadata"]["NetNSPath"] = "";
    setInfo(r.response, r.info);
    auto info = sandboxInfoFromStatus(r.response);
    EXPECT_EQ(failureOf(info.status()), ResolveFailure::kHostNetwork) << info.status();
  }
  {
    // POD (0, omitted by Go) and CONTAINER (1) are not the node's.
    Recorded r = loadRecorded();
    r.info["config"]["linux"]["security_context"]["namespace_options"]["network"] = 1;
    setInfo(r.response, r.info);
    EXPECT_TRUE(sandboxInfoFromStatus(r.response).ok());
  }
}

// --- closed ---------------------------------------------------------------------------------

TEST(SandboxInfoFromStatus, ClosedNetns) {
  Recorded r = loadRecorded();
  r.info["netNamespaceClosed"] = true;
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNetnsClosed) << info.status();
  EXPECT_NE(info.status().message().find("cni-f3da19b4"), std::string::npos) << info.status();
}

TEST(SandboxInfoFromStatus, ClosedNetnsOfAContainerd2SandboxWithoutRuntimeSpec) {
  Recorded r = loadFixture(kContainerd2NoSpec);
  r.info["netNamespaceClosed"] = true;
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  EXPECT_EQ(failureOf(info.status()), ResolveFailure::kNetnsClosed) << info.status();
  EXPECT_THAT(messageOf(info.status()), HasSubstr("cni-0a1b2c3d"));
}

TEST(SandboxInfoFromStatus, MissingPidIsZeroNotAnError) {
  Recorded r = loadRecorded();
  r.info.erase("pid");
  setInfo(r.response, r.info);
  auto info = sandboxInfoFromStatus(r.response);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->pid, 0);
}

// --- malformed ------------------------------------------------------------------------------

struct MalformedCase {
  const char* name;
  const char* fixture;
  std::function<void(Recorded&)> edit;
  std::vector<std::string> says;  // substrings of the message
};

// Edits the decoded info and re-encodes it.
std::function<void(Recorded&)> editInfo(std::function<void(nlohmann::json&)> edit) {
  return [edit](Recorded& r) {
    edit(r.info);
    setInfo(r.response, r.info);
  };
}

std::function<void(Recorded&)> rawInfo(std::string text) {
  return [text](Recorded& r) { (*r.response.mutable_info())["info"] = text; };
}

TEST(SandboxInfoFromStatus, MalformedAnswersAreMalformedStatusNamingWhatIsWrong) {
  using nlohmann::json;
  const auto spec_namespaces = [](json& i) -> json& {
    return i["runtimeSpec"]["linux"]["namespaces"];
  };
  const std::vector<MalformedCase> cases = {
      {"no verbose info",
       kContainerd16,
       [](Recorded& r) { r.response.mutable_info()->clear(); },
       {"no verbose info (key \"info\"", "info map is empty"}},
      {"another info key only",
       kContainerd16,
       [](Recorded& r) {
         r.response.mutable_info()->clear();
         (*r.response.mutable_info())["config"] = "{}";
       },
       {"has only \"config\""}},
      {"empty text", kContainerd16, rawInfo(""), {"verbose info is empty"}},
      {"not JSON", kContainerd16, rawInfo("{\"pid\": 1,"), {"is not JSON"}},
      {"a list", kContainerd16, rawInfo("[1, 2]"), {"is a list, not a JSON object"}},
      {"a string", kContainerd16, rawInfo("\"runtimeSpec\""), {"is a string, not a JSON object"}},
      {"null", kContainerd16, rawInfo("null"), {"is null, not a JSON object"}},
      {"runtimeSpec not an object",
       kContainerd16,
       editInfo([](json& i) { i["runtimeSpec"] = "spec"; }),
       {"runtimeSpec is a string, not an object"}},
      {"runtimeSpec.linux not an object",
       kContainerd16,
       editInfo([](json& i) { i["runtimeSpec"]["linux"] = json::array(); }),
       {"runtimeSpec.linux is a list, not an object"}},
      {"namespaces not a list",
       kContainerd16,
       editInfo([=](json& i) { spec_namespaces(i) = "network"; }),
       {"runtimeSpec.linux.namespaces is a string, not a list"}},
      {"namespaces an object",
       kContainerd2Ready,
       editInfo([=](json& i) {
         spec_namespaces(i) = {{"network", "/var/run/netns/x"}};
       }),
       {"runtimeSpec.linux.namespaces is an object, not a list"}},
      {"the network entry without type",
       kContainerd16,
       editInfo([=](json& i) { spec_namespaces(i)[4].erase("type"); }),
       {"runtimeSpec.linux.namespaces[4] has no type"}},
      {"an entry with a numeric type",
       kContainerd16,
       editInfo([=](json& i) { spec_namespaces(i)[4]["type"] = 4; }),
       {"runtimeSpec.linux.namespaces[4].type is an integer, not a string"}},
      {"an entry that is no object",
       kContainerd16,
       editInfo([=](json& i) { spec_namespaces(i)[4] = "network"; }),
       {"runtimeSpec.linux.namespaces[4] is a string, not an object"}},
      {"network path a number",
       kContainerd16,
       editInfo([=](json& i) { spec_namespaces(i)[4]["path"] = 7; }),
       {"runtimeSpec.linux.namespaces[4].path is an integer, not a string"}},
      {"network path a list",
       kContainerd2Ready,
       editInfo(
           [=](json& i) { spec_namespaces(i)[4]["path"] = json::array({"/var/run/netns/x"}); }),
       {"runtimeSpec.linux.namespaces[4].path is a list, not a string"}},
      {"sandboxMetadata not an object",
       kContainerd2NoSpec,
       editInfo([](json& i) { i["sandboxMetadata"] = "v1"; }),
       {"sandboxMetadata is a string, not an object"}},
      {"sandboxMetadata without Metadata, no pid",
       kContainerd2NoSpec,
       editInfo([](json& i) {
         i["sandboxMetadata"].erase("Metadata");
         i.erase("pid");
       }),
       {"runtimeSpec is null", "sandboxMetadata (Version \"v1\") has no Metadata", "no pid"}},
      {"sandboxMetadata of an unknown version, pid 0",
       kContainerd2NoSpec,
       editInfo([](json& i) {
         i["sandboxMetadata"] = {{"Version", "v2"}, {"Sandbox", {{"NetNSPath", "/x"}}}};
         i["pid"] = 0;
       }),
       {"sandboxMetadata (Version \"v2\") has no Metadata", "pid 0"}},
      {"Metadata not an object",
       kContainerd2NoSpec,
       editInfo([](json& i) { i["sandboxMetadata"]["Metadata"] = json::array(); }),
       {"sandboxMetadata.Metadata is a list, not an object"}},
      {"NetNSPath not a string",
       kContainerd2NoSpec,
       editInfo([](json& i) { i["sandboxMetadata"]["Metadata"]["NetNSPath"] = true; }),
       {"sandboxMetadata.Metadata.NetNSPath is a boolean, not a string"}},
      {"NetNSPath empty, pid 0",
       kContainerd2NoSpec,
       editInfo([](json& i) {
         i["sandboxMetadata"]["Metadata"]["NetNSPath"] = "";
         i["pid"] = 0;
       }),
       {"runtimeSpec is null", "sandboxMetadata.Metadata.NetNSPath is empty", "pid 0",
        "keys: cniResult, config, image"}},
      {"pid negative",
       kContainerd2NoSpec,
       editInfo([](json& i) { i["pid"] = -1; }),
       {"pid -1 is negative"}},
      {"pid a string",
       kContainerd16,
       editInfo([](json& i) { i["pid"] = "14142"; }),
       {"pid is a string (\"14142\"), not an integer"}},
      {"pid fractional",
       kCrioInfra,
       editInfo([](json& i) { i["pid"] = 27182.5; }),
       {"pid is a fractional number"}},
      {"pid out of range",
       kCrioInfra,
       editInfo([](json& i) { i["pid"] = 1ULL << 40; }),
       {"pid 1099511627776 is out of range"}},
      {"netNamespaceClosed not a bool",
       kContainerd16,
       editInfo([](json& i) { i["netNamespaceClosed"] = "no"; }),
       {"netNamespaceClosed is a string, not a boolean"}},
      {"no status",
       kContainerd16,
       [](Recorded& r) { r.response.clear_status(); },
       {"has no sandbox status"}},
      {"no sandbox id",
       kContainerd16,
       [](Recorded& r) { r.response.mutable_status()->clear_id(); },
       {"has no sandbox status"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Recorded r = loadFixture(c.fixture);
    c.edit(r);
    auto info = sandboxInfoFromStatus(r.response);
    ASSERT_EQ(failureOf(info.status()), ResolveFailure::kMalformedStatus) << info.status();
    const std::string message = messageOf(info.status());
    if (r.response.has_status() && !r.response.status().id().empty()) {
      EXPECT_THAT(message, StartsWith("sandbox " + r.response.status().id().substr(0, 13) + ":"));
    }
    for (const std::string& part : c.says) EXPECT_THAT(message, HasSubstr(part));
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

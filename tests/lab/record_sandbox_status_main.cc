// Records a containerd's real PodSandboxStatus(verbose=true) answers as test fixtures:
//
//   containerd_lab_record_sandbox_status OUT_DIR
//
// in a lab (whose containerd LabOptions::fromEnvironment() names: CAPTURE_CONTROLLER_LAB_CONTAINERD
// for another version), runs one sandbox as the kubelet does and writes
//   OUT_DIR/sandbox-status-ready.json        the READY sandbox
//   OUT_DIR/sandbox-status-shim-killed.json  the same sandbox after its shim
//                                            (containerd-shim-runc-v2) was SIGKILLed, once
//                                            containerd no longer says READY (30 s at most)
// Each is the response as proto3 JSON (proto field names, every field), with the `info` map's
// values, JSON documents sent as strings, decoded; a `_comment` says what was recorded and how.
// Needs root.
#include <glog/logging.h>
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "tests/lab/containerd_lab.h"
#include "tests/support/files.h"
#include "tests/support/wait.h"

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

std::string today() {
  char buf[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

absl::StatusOr<nlohmann::json> asJson(const runtime::v1::PodSandboxStatusResponse& response) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string text;
  if (auto s = google::protobuf::util::MessageToJsonString(response, &text, options); !s.ok()) {
    return absl::InternalError("cannot print the response as JSON: " + s.ToString());
  }
  nlohmann::json out = nlohmann::json::parse(text);
  for (const auto& [key, value] : response.info()) {
    auto decoded = nlohmann::json::parse(value, nullptr, false);
    out["info"][key] = decoded.is_discarded() ? nlohmann::json(value) : decoded;
  }
  return out;
}

// The shim that serves `sandbox_id` for the lab at `socket`: its command line carries both.
pid_t shimOf(const std::string& socket, const std::string& sandbox_id) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string raw = testsupport::readFile("/proc/" + name + "/cmdline");
    const std::vector<std::string> args = absl::StrSplit(raw, '\0', absl::SkipEmpty());
    bool ours = false, serves = false;
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-address" && args[i + 1] == socket) ours = true;
      if (args[i] == "-id" && args[i + 1] == sandbox_id) serves = true;
    }
    if (ours && serves) return std::stoi(name);
  }
  return 0;
}

bool write(const std::string& path, nlohmann::json document) {
  std::ofstream out(path, std::ios::trunc);
  out << document.dump(1) << "\n";
  out.close();
  if (!out) {
    std::cerr << "cannot write " << path << "\n";
    return false;
  }
  std::cout << "wrote " << path << "\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " OUT_DIR\n";
    return 2;
  }
  const std::string out_dir = argv[1];
  fs::create_directories(out_dir);
  auto started = lab::ContainerdLab::start();
  if (!started.ok()) {
    std::cerr << started.status() << "\n";
    return 1;
  }
  lab::ContainerdLab& lab = **started;
  const std::string version = lab.containerdVersion();
  auto sandbox = lab.runPodSandbox(lab::podNamed("lab-pod"));
  if (!sandbox.ok()) {
    std::cerr << sandbox.status() << "\n";
    return 1;
  }
  const std::vector<std::string> common = {
      "PodSandboxStatus(verbose=true) response from containerd " + version + " (" +
          lab.containerdBinary() + "), recorded " + today() +
          " by tests/lab/record_sandbox_status_main.cc (containerd_lab_record_sandbox_status) in "
          "a tests/lab ContainerdLab: runc " +
          "of the machine, CNI bridge + host-local, the lab's pause image, cgroupfs.",
      "Top level = PodSandboxStatusResponse as proto3 JSON (proto field names, every field, int64 "
      "as strings, enums as names).",
      "ON THE WIRE, info is map<string,string>; each value is a JSON document sent as a STRING, "
      "shown decoded here.",
  };

  auto ready = lab.client().podSandboxStatus(sandbox->id, /*verbose=*/true);
  if (!ready.ok()) {
    std::cerr << ready.status() << "\n";
    return 1;
  }
  auto ready_json = asJson(*ready);
  if (!ready_json.ok()) {
    std::cerr << ready_json.status() << "\n";
    return 1;
  }
  nlohmann::json comment = common;
  comment.push_back("Step: RunPodSandbox (pod default/lab-pod, attempt 0), then this call: READY.");
  (*ready_json)["_comment"] = comment;
  if (!write(out_dir + "/sandbox-status-ready.json", *ready_json)) return 1;

  const std::string socket = lab.endpoint().substr(std::string("unix://").size());
  const pid_t shim = shimOf(socket, sandbox->id);
  if (shim == 0) {
    std::cerr << "no shim of sandbox " << sandbox->id << " found\n";
    return 1;
  }
  const auto killed_at = std::chrono::steady_clock::now();
  ::kill(shim, SIGKILL);
  absl::StatusOr<runtime::v1::PodSandboxStatusResponse> after;
  const bool not_ready = testsupport::waitUntil(
      [&] {
        after = lab.client().podSandboxStatus(sandbox->id, /*verbose=*/true);
        return after.ok() && after->status().state() != runtime::v1::SANDBOX_READY;
      },
      seconds(30), milliseconds(50));
  const auto took =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killed_at);
  if (!after.ok()) {
    std::cerr << after.status() << "\n";
    return 1;
  }
  auto killed_json = asJson(*after);
  if (!killed_json.ok()) {
    std::cerr << killed_json.status() << "\n";
    return 1;
  }
  comment = common;
  comment.push_back(
      "Steps: RunPodSandbox (pod default/lab-pod, attempt 0); READY (sandbox-status-ready.json); "
      "SIGKILL to the sandbox's containerd-shim-runc-v2 (pid " +
      std::to_string(shim) + "); then this call, the first answer that was not READY, " +
      std::to_string(took.count()) + " ms after the kill" +
      (not_ready ? "." : " -- NONE within 30 s: this is the last answer, still READY."));
  (*killed_json)["_comment"] = comment;
  if (!write(out_dir + "/sandbox-status-shim-killed.json", *killed_json)) return 1;
  return 0;
}

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>
#include <map>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "cri/cri_sandbox_resolver.h"
#include "cri/runtime_client.h"

DECLARE_bool(help);
DECLARE_bool(helpshort);

// Flags of every subcommand live here, so `--help` lists them in one place.
DEFINE_string(cri_endpoint, cri::kDefaultEndpoint,
              "CRI runtime socket: unix:///path or /path (containerd's by default)");
DEFINE_string(cri_timeout, "2s", "deadline of each CRI call, e.g. 500ms, 2s");
DEFINE_string(pod_uid, "", "sandbox: the pod's UID (metadata.uid)");
DEFINE_string(pod, "", "sandbox: the pod as NAMESPACE/NAME (instead of --pod-uid)");

namespace {

constexpr char kUsage[] = R"(packet captures of Pods, on demand, by annotation.

Usage:
  capture-controller sandbox (--pod-uid UID | --pod NAMESPACE/NAME) [--cri-endpoint E] [--cri-timeout D]
      Resolves the pod's live sandbox through the CRI runtime (ListPodSandbox by the kubelet's
      labels, then PodSandboxStatus verbose) and prints it as JSON: sandbox id, state, attempt,
      netns path, pause pid, pod IP. Compare with `crictl inspectp <id>`. On failure prints the
      reason to stderr and exits 1.

Flags (--pod-uid and --pod_uid are the same flag):
)";

absl::StatusOr<cri::RuntimeClientOptions> criOptions() {
  absl::Duration timeout;
  if (!absl::ParseDuration(FLAGS_cri_timeout, &timeout) || timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--cri-timeout: not a positive duration: " +
                                      FLAGS_cri_timeout);
  }
  return cri::RuntimeClientOptions{FLAGS_cri_endpoint, absl::ToChronoMilliseconds(timeout)};
}

int sandboxCommand() {
  if (FLAGS_pod_uid.empty() == FLAGS_pod.empty()) {
    std::cerr << "sandbox: give exactly one of --pod-uid or --pod NAMESPACE/NAME\n";
    return 2;
  }
  auto options = criOptions();
  if (!options.ok()) {
    std::cerr << options.status().message() << "\n";
    return 2;
  }
  cri::RuntimeClient client(*options);
  cri::CriSandboxResolver resolver(client);
  absl::StatusOr<cri::SandboxInfo> info;
  if (!FLAGS_pod_uid.empty()) {
    info = resolver.resolve(FLAGS_pod_uid);
  } else {
    const auto slash = FLAGS_pod.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == FLAGS_pod.size()) {
      std::cerr << "sandbox: --pod must be NAMESPACE/NAME, got " << FLAGS_pod << "\n";
      return 2;
    }
    info = resolver.resolveByName(FLAGS_pod.substr(0, slash), FLAGS_pod.substr(slash + 1));
  }
  if (!info.ok()) {
    std::cerr << cri::toString(cri::failureOf(info.status())) << ": " << info.status().message()
              << "\n";
    return 1;
  }
  std::cout << cri::toJson(*info).dump(2) << "\n";
  return 0;
}

// Subcommands by name; `run` (the controller itself) joins them.
const std::map<std::string_view, int (*)()> kCommands = {
    {"sandbox", sandboxCommand},
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(kUsage);
  gflags::ParseCommandLineNonHelpFlags(&argc, &argv, /*remove_flags=*/true);
  if (FLAGS_help || FLAGS_helpshort) {
    // gflags' own --help would list glog's and gflags' flags too; ours are in this file.
    gflags::ShowUsageWithFlagsRestrict(argv[0], "main.cc");
    return 0;
  }
  gflags::HandleCommandLineHelpFlags();
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  const auto command = argc >= 2 ? kCommands.find(argv[1]) : kCommands.end();
  if (command == kCommands.end()) {
    std::cerr << (argc >= 2 ? "unknown command: " + std::string(argv[1]) + "\n" : "")
              << "usage: capture-controller sandbox --pod-uid UID (see --help)\n";
    return 2;
  }
  return command->second();
}

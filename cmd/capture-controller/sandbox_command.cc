#include <iostream>

#include "cmd/capture-controller/commands.h"
#include "cmd/capture-controller/flags.h"
#include "cri/cri_sandbox_resolver.h"
#include "cri/runtime_client.h"

namespace cmd {

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

}  // namespace cmd

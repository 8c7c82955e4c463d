#include <glog/logging.h>
#include <unistd.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "cri/cri_sandbox_resolver.h"
#include "tests/lab/containerd_lab.h"

// Plays a test that crashes: starts a lab and one sandbox, prints what it made as JSON, and
// exits without any teardown, as a SIGKILLed test would.
int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  auto started = lab::ContainerdLab::start();
  if (!started.ok()) {
    std::cerr << started.status() << "\n";
    return 1;
  }
  lab::ContainerdLab& lab = **started;
  auto sandbox = lab.runPodSandbox(lab::podNamed("crashing"));
  if (!sandbox.ok()) {
    std::cerr << sandbox.status() << "\n";
    return 1;
  }
  cri::CriSandboxResolver resolver(lab.client());
  auto info = resolver.resolve(sandbox->pod_uid);
  if (!info.ok()) {
    std::cerr << info.status() << "\n";
    return 1;
  }
  std::cout << nlohmann::json{{"dir", lab.dir()},
                              {"bridge", lab.bridge()},
                              {"containerdPid", lab.containerdPid()},
                              {"netns", info->netns_path},
                              {"pid", info->pid}}
            << std::endl;
  ::_exit(0);
}

#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri/runtime_client.h"
#include "tests/lab/kubelet_client.h"

// A private, real containerd for end-to-end tests, driven the way the kubelet drives it.
//
// Each ContainerdLab takes a free "slot" N (an flock on /run/capture-controller-lab/slot-N.lock,
// held for its lifetime and released by the kernel if the process dies) and everything it
// creates is named after that slot, so that several test binaries can run at once:
//   dir        /run/capture-controller-lab/slot-N/  config, root, state, socket, logs, CNI state
//   socket     <dir>/containerd.sock
//   bridge     cclabN, subnet 10.251.N.0/24, gateway 10.251.N.1 (CNI bridge + host-local)
//   cgroups    /cclabN/pod<uid>/... (cgroupfs driver)
// The pause image is built from pause.c by pause-image.sh, cached by content under
// /var/tmp/capture-controller-lab, and imported with `ctr images import` (no registry).
//
// Which containerd: the machine's (containerd, its shim and ctr on PATH), or another version's
// unpacked Debian package (LabOptions::containerd_root, by default from the environment variable
// CAPTURE_CONTROLLER_LAB_CONTAINERD; tests/tools/fetch-containerd.sh makes one). The config is
// the one that version reads: version 2 for 1.x, version 3 for 2.x. The shim is that package's,
// runc the machine's.
//
// Teardown (the destructor) removes every sandbox through CRI, stops containerd, kills leftover
// shims and sandbox processes, unmounts what is left under <dir>, deletes the bridge, the
// cgroups and <dir>, and restores net.ipv4.ip_forward when the last lab goes (the bridge plugin
// turns it on). A crashed test leaves its slot directory behind with nobody holding its lock:
// the next start() reaps every such slot the same way, and so does reapDeadLabs().
namespace lab {

// What the kubelet knows of a pod when it asks for its sandbox.
struct PodSpec {
  std::string name;
  std::string namespace_ = "default";
  std::string uid;  // empty: a fresh random UID
  uint32_t attempt = 0;
  bool host_network = false;
};

inline PodSpec podNamed(std::string name) {
  PodSpec pod;
  pod.name = std::move(name);
  return pod;
}

struct Sandbox {
  std::string id;
  std::string pod_uid;
  std::string ip;  // empty for a host-network sandbox
};

struct LabOptions {
  // A directory holding usr/bin/containerd, usr/bin/containerd-shim-runc-v2 and usr/bin/ctr (a
  // containerd package unpacked with dpkg -x); empty: the machine's, found on PATH.
  std::string containerd_root;
  // When set, start() fails unless containerd says it is this version (e.g. "1.7.24"): its
  // CRI Version's runtime_version, without a Debian suffix such as "~ds1", starts with it.
  std::string expect_version;

  // CAPTURE_CONTROLLER_LAB_CONTAINERD and CAPTURE_CONTROLLER_LAB_CONTAINERD_VERSION (both may be
  // unset: the machine's containerd, whatever its version).
  static LabOptions fromEnvironment();
};

class ContainerdLab {
 public:
  // Needs root. Takes a few seconds the first time on a machine (image build), about one after.
  static absl::StatusOr<std::unique_ptr<ContainerdLab>> start(const LabOptions& options);
  // start(LabOptions::fromEnvironment()).
  static absl::StatusOr<std::unique_ptr<ContainerdLab>> start();
  ~ContainerdLab();
  ContainerdLab(const ContainerdLab&) = delete;
  ContainerdLab& operator=(const ContainerdLab&) = delete;

  const std::string& dir() const { return dir_; }
  std::string endpoint() const { return "unix://" + socket_; }  // for --cri-endpoint
  const std::string& bridge() const { return bridge_; }
  const std::string& subnet() const { return subnet_; }    // e.g. 10.251.3.0/24
  const std::string& gateway() const { return gateway_; }  // the host's address on the bridge
  pid_t containerdPid() const { return containerd_pid_; }
  // The running containerd's binary and its version as CRI Version reports it
  // (runtime_version, e.g. "1.7.24~ds1" or "v2.1.9").
  const std::string& containerdBinary() const { return containerd_binary_; }
  const std::string& containerdVersion() const { return containerd_version_; }
  // The controller's own client, with a generous deadline.
  cri::RuntimeClient& client() { return *client_; }
  // The calls only the kubelet makes, with a generous deadline.
  KubeletClient& kubelet() { return *kubelet_; }

  // What the kubelet sends for `pod` (whose uid is set): its labels
  // (io.kubernetes.pod.name/namespace/uid), metadata, log directory, cgroup parent under the
  // lab's and namespace options.
  runtime::v1::PodSandboxConfig sandboxConfig(const PodSpec& pod) const;
  // RunPodSandbox with sandboxConfig(pod); returns once the sandbox is READY, with its IP.
  absl::StatusOr<Sandbox> runPodSandbox(PodSpec pod);
  absl::Status stopPodSandbox(const std::string& id);
  absl::Status removePodSandbox(const std::string& id);
  // `ctr images import` into the CRI namespace (k8s.io): an OCI or Docker archive, under the
  // names it carries.
  absl::Status importImage(const std::string& archive);

  static std::string newPodUid();

 private:
  explicit ContainerdLab(int slot);
  absl::Status startContainerd(const std::string& pause_archive, const LabOptions& options);

  int slot_;
  int slot_lock_fd_ = -1;
  std::string dir_, socket_, bridge_, subnet_, gateway_;
  std::string snapshotter_;
  std::string containerd_binary_, ctr_binary_, containerd_version_;
  pid_t containerd_pid_ = 0;
  std::unique_ptr<cri::RuntimeClient> client_;
  std::unique_ptr<KubeletClient> kubelet_;
};

// Tears down the leftovers of every lab whose process is gone (a crashed or killed test).
// start() does this too; ctest also runs it after the end-to-end tests.
// Returns the directories of dead labs that it could not remove.
std::vector<std::string> reapDeadLabs();

}  // namespace lab

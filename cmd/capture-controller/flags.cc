#include "cmd/capture-controller/flags.h"

#include "absl/strings/str_cat.h"
#include "capture/annotation.h"
#include "capture/tcpdump.h"

DEFINE_string(node_name, "",
              "run: the node whose Pods this controller captures (their spec.nodeName); "
              "default $NODE_NAME, which the DaemonSet sets from the downward API");
DEFINE_string(cri_endpoint, cri::kDefaultEndpoint,
              "CRI runtime socket: unix:///path or /path (containerd's by default)");
DEFINE_string(cri_timeout, "2s", "deadline of each CRI call, e.g. 500ms, 2s");
DEFINE_string(capture_dir, "/",
              "run: where tcpdump writes capture-<pod>.pcap<index>; at start-up every capture "
              "file in it is deleted (owned by an earlier run or not) but those of Completed "
              "and bounded captures that go on, and the other wanted captures start afresh; "
              "a directory owned by root, not writable by group or others");
DEFINE_int32(max_files, capture::kDefaultMaxCaptureFiles,
             "run: the largest N accepted in tcpdump.antrea.io=\"N\" (N files of 1 MB per "
             "capture)");
DEFINE_string(kubeconfig, "",
              "run: kubeconfig file of the API server; default: $KUBECONFIG, then the Pod's "
              "service account (in a cluster), then ~/.kube/config");
DEFINE_string(
    http_address, ":8080",
    "run: where to serve /healthz, /readyz, /metrics and /captures (host:port; :port "
    "for every address, IPv6 and IPv4; port 0 for any free port, logged); captures, follow: the "
    "controller to ask (its port, on 127.0.0.1 unless a host is given)");
DEFINE_string(tcpdump, capture::kDefaultTcpdumpPath, "run: the tcpdump binary");
DEFINE_string(resync_period, "10s",
              "run: how often every capture's sandbox is looked up again, so that a sandbox "
              "the kubelet replaced is noticed within this time");
DEFINE_bool(json, false, "captures: print the controller's JSON instead of a table");
DEFINE_bool(paths, false,
            "captures: with --pod, print the capture's file paths, one per line, oldest first");
DEFINE_string(pod_uid, "", "sandbox: the pod's UID (metadata.uid)");
DEFINE_string(pod, "",
              "sandbox: the pod as NAMESPACE/NAME (instead of --pod-uid); captures: only that "
              "pod's capture");

namespace cmd {

absl::StatusOr<absl::Duration> positiveDuration(const char* flag, const std::string& value) {
  absl::Duration duration;
  if (!absl::ParseDuration(value, &duration) || duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": not a positive duration (e.g. 500ms, 2s): ", value));
  }
  return duration;
}

absl::StatusOr<cri::RuntimeClientOptions> criOptions() {
  auto timeout = positiveDuration("cri-timeout", FLAGS_cri_timeout);
  if (!timeout.ok()) return timeout.status();
  return cri::RuntimeClientOptions{FLAGS_cri_endpoint, absl::ToChronoMilliseconds(*timeout)};
}

}  // namespace cmd

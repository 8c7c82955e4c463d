#!/usr/bin/env bash
# The end-to-end check on the cluster of kind/up.sh: captures the traffic of a test Pod by
# annotation, keeps the evidence in OUT_DIR, then removes the annotation and checks that the
# capture stopped and its files are gone. Exits non-zero, naming the step, on any failure.
# Environment: OUT_DIR (default ./out), CLUSTER_NAME, KUBE_CONTEXT (kind/common.sh).
#
# OUT_DIR receives:
#   pod-describe.txt          kubectl describe of the test Pod while captured (Events included)
#   pods.txt                  kubectl get pods -A -o wide
#   capture-files.txt         ls -l /capture-* in the controller Pod on the test Pod's node
#   capture-<pod>.pcap<i>     one capture file, copied with kubectl cp
#   capture-output.txt        tcpdump -r of that file
#   pod-describe-stopped.txt  kubectl describe of the test Pod after the annotation's removal
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

OUT_DIR=${OUT_DIR:-./out}
CAPTURE_FILES=5
ANNOTATION=tcpdump.antrea.io
# The controller writes /capture-<pod name>.pcap, then tcpdump's rotation digits.
CAPTURE_PATTERN="capture-${TEST_POD}.pcap*"

require_tools kubectl
mkdir -p "$OUT_DIR"

echo "== test Pod $TEST_NAMESPACE/$TEST_POD"
# A fresh Pod each run: no annotation or capture left over from an earlier run.
kube delete -f "$ROOT/deploy/test-pod.yaml" --ignore-not-found --wait=true --timeout=60s
kube apply -f "$ROOT/deploy/test-pod.yaml"
kube -n "$TEST_NAMESPACE" wait --for=condition=Ready "pod/$TEST_POD" --timeout=180s
node=$(kube -n "$TEST_NAMESPACE" get pod "$TEST_POD" -o jsonpath='{.spec.nodeName}')
pod_uid=$(kube -n "$TEST_NAMESPACE" get pod "$TEST_POD" -o jsonpath='{.metadata.uid}')

# {.items[*]}, not {.items[0]}: kubectl fails on the index of an empty list, before the die.
controller=$(kube -n "$CONTROLLER_NAMESPACE" get pods -l "$CONTROLLER_SELECTOR" \
  --field-selector "spec.nodeName=$node" -o jsonpath='{.items[*].metadata.name}')
controller=${controller%% *}
[[ -n $controller ]] || die "no capture-controller Pod on node $node: run kind/up.sh first"
kube -n "$CONTROLLER_NAMESPACE" wait --for=condition=Ready "pod/$controller" --timeout=120s
echo "test Pod on node $node, controller Pod $controller"

in_controller() {
  kube -n "$CONTROLLER_NAMESPACE" exec "$controller" -- "$@"
}

# The checks below print a count inside the controller Pod and compare it, so that a failed
# kubectl exec never passes for "nothing there".
count_capture_files() {
  in_controller bash -c "find / -maxdepth 1 -name '$CAPTURE_PATTERN' | wc -l"
}
count_tcpdump_processes() {
  # No ps in the image: read /proc. A zombie still counts, as it should.
  # shellcheck disable=SC2016  # expanded by the bash inside the controller Pod
  in_controller bash -c 'n=0
    for f in /proc/[0-9]*/comm; do
      read -r comm <"$f" 2>/dev/null && [[ $comm == tcpdump ]] && n=$((n + 1))
    done
    echo "$n"'
}
# A pcap file holds packets once it is larger than its 24-byte file header.
first_file_with_packets() {
  in_controller find / -maxdepth 1 -name "$CAPTURE_PATTERN" -size +24c -print -quit
}
has_packets() { [[ -n $(first_file_with_packets) ]]; }
no_capture_files() { [[ $(count_capture_files) == 0 ]]; }
no_tcpdump() { [[ $(count_tcpdump_processes) == 0 ]]; }
has_event() {
  [[ -n $(kube -n "$TEST_NAMESPACE" get events -o name \
    --field-selector "involvedObject.uid=$pod_uid,reason=$1") ]]
}

echo "== capture: $ANNOTATION=$CAPTURE_FILES"
kube -n "$TEST_NAMESPACE" annotate pod "$TEST_POD" "$ANNOTATION=$CAPTURE_FILES" --overwrite
wait_for 120 "a capture file with packets in $controller" has_packets
wait_for 60 "a CaptureStarted Event on $TEST_POD" has_event CaptureStarted

pcap=$(first_file_with_packets)
local_pcap="$OUT_DIR/$(basename "$pcap")"
kube -n "$TEST_NAMESPACE" describe pod "$TEST_POD" >"$OUT_DIR/pod-describe.txt"
kube get pods -A -o wide >"$OUT_DIR/pods.txt"
in_controller bash -c 'ls -l /capture-*' >"$OUT_DIR/capture-files.txt"
kube -n "$CONTROLLER_NAMESPACE" cp "$controller:$pcap" "$local_pcap"
[[ -s $local_pcap ]] || die "kubectl cp of $pcap gave an empty file"

# tcpdump stops with an error at a packet cut short, which a copy taken while tcpdump is
# writing may end with: what it printed before that is still the capture.
if command -v tcpdump >/dev/null 2>&1; then
  read_pcap() { tcpdump -nn -r "$local_pcap"; }
else
  read_pcap() {
    kube -n "$CONTROLLER_NAMESPACE" exec -i "$controller" -- tcpdump -nn -r - <"$local_pcap"
  }
fi
if ! read_pcap >"$OUT_DIR/capture-output.txt"; then
  echo "$SCRIPT: note: tcpdump -r stopped at the end of a partly written packet" >&2
fi
[[ -s $OUT_DIR/capture-output.txt ]] || die "tcpdump -r found no packet in $local_pcap"
echo "captured $(wc -l <"$OUT_DIR/capture-output.txt") packets into $local_pcap"

echo "== stop: remove $ANNOTATION"
kube -n "$TEST_NAMESPACE" annotate pod "$TEST_POD" "$ANNOTATION-"
wait_for 60 "tcpdump to stop in $controller" no_tcpdump
wait_for 30 "the capture files to be deleted in $controller" no_capture_files
wait_for 60 "a CaptureStopped Event on $TEST_POD" has_event CaptureStopped
kube -n "$TEST_NAMESPACE" describe pod "$TEST_POD" >"$OUT_DIR/pod-describe-stopped.txt"

echo "$SCRIPT: OK: evidence in $OUT_DIR (the test Pod stays; kind/down.sh deletes the cluster)"

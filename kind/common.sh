# shellcheck shell=bash disable=SC2034  # the names are used by the scripts that source this
# Sourced by kind/up.sh, kind/verify.sh, kind/down.sh and kind/install-tools.sh: the names
# they share and small helpers. Names in the first block can be overridden from the environment.
# Kept to bash 3.2 (macOS's /bin/bash): no mapfile, no empty arrays under `set -u`.

CLUSTER_NAME=${CLUSTER_NAME:-capture-controller}
IMAGE=${IMAGE:-capture-controller:dev}
KUBE_CONTEXT=${KUBE_CONTEXT:-kind-${CLUSTER_NAME}}

# What deploy/ names. tests/ship checks that the manifests agree with these.
CONTROLLER_NAMESPACE=kube-system
CONTROLLER_DAEMONSET=capture-controller
CONTROLLER_CONTAINER=capture-controller
CONTROLLER_SELECTOR=app.kubernetes.io/name=capture-controller
TEST_NAMESPACE=default
TEST_POD=traffic-generator

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT=$(basename "$0")

# Every failure names the command that failed, so that a long run ends with a clear reason.
set -o errtrace
trap 'echo "$SCRIPT: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

die() {
  echo "$SCRIPT: FAILED: $*" >&2
  exit 1
}

require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not on PATH"
  done
}

# kubectl on the Kind cluster, whatever the current context is.
kube() {
  kubectl --context "$KUBE_CONTEXT" "$@"
}

# wait_for SECONDS DESCRIPTION COMMAND [ARG...]: runs COMMAND every 2 s until it succeeds, and
# fails the script once SECONDS have passed.
wait_for() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${timeout}s waiting for ${what}"
    fi
    sleep 2
  done
}

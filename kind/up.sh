#!/usr/bin/env bash
# Installs the tools it needs if they are missing (kind/install-tools.sh; root on a fresh
# machine), then creates a Kind cluster (kind/kind-config.yaml: a control plane and two
# workers) with Antrea as its CNI, installed with Helm; builds the controller's image with
# Docker, loads it into the nodes and deploys deploy/rbac.yaml and deploy/daemonset.yaml.
# Safe to run again: an existing cluster and Antrea release are kept, and the controller is
# restarted on the image just built.
# Environment: CLUSTER_NAME, IMAGE, KUBE_CONTEXT (kind/common.sh), ANTREA_VERSION (a chart
# version; the latest when unset).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Installs what is missing (as root), or says what to install.
"$ROOT/kind/install-tools.sh"

# Not grep -q: its early exit could kill kind with SIGPIPE and fail the pipe (pipefail).
if kind get clusters 2>/dev/null | grep -x "$CLUSTER_NAME" >/dev/null; then
  echo "== Kind cluster $CLUSTER_NAME exists: keeping it"
else
  echo "== creating Kind cluster $CLUSTER_NAME"
  kind create cluster --name "$CLUSTER_NAME" --config "$ROOT/kind/kind-config.yaml"
fi

echo "== Antrea"
helm repo add antrea https://charts.antrea.io --force-update # fetches the index too
if helm --kube-context "$KUBE_CONTEXT" status antrea --namespace kube-system >/dev/null 2>&1; then
  echo "Helm release antrea exists: keeping it"
else
  helm --kube-context "$KUBE_CONTEXT" install antrea antrea/antrea --namespace kube-system \
    ${ANTREA_VERSION:+--version "$ANTREA_VERSION"}
fi
kube -n kube-system rollout status deployment/antrea-controller --timeout=5m
kube -n kube-system rollout status daemonset/antrea-agent --timeout=5m
# Nodes turn Ready, and CoreDNS gets Pod IPs, only once the CNI works.
kube wait --for=condition=Ready nodes --all --timeout=5m
kube -n kube-system rollout status deployment/coredns --timeout=5m

echo "== image $IMAGE"
version=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)
docker build --build-arg VERSION="$version" -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

echo "== capture-controller"
# The DaemonSet's generation, empty when it does not exist yet.
generation() {
  kube -n "$CONTROLLER_NAMESPACE" get daemonset "$CONTROLLER_DAEMONSET" \
    -o jsonpath='{.metadata.generation}' --ignore-not-found
}
before=$(generation)
kube apply -f "$ROOT/deploy/rbac.yaml"
# The manifest with the image just built (IMAGE may differ from its tag), applied once: a
# separate `set image` after the apply would roll out the manifest's tag first.
kube set image --local -f "$ROOT/deploy/daemonset.yaml" "$CONTROLLER_CONTAINER=$IMAGE" -o yaml |
  kube apply -f -
if [[ -n $before && $(generation) == "$before" ]]; then
  # The apply changed nothing, yet the tag may name a new build now: restart so that every
  # node runs the image just loaded. A changed DaemonSet rolls out by itself.
  kube -n "$CONTROLLER_NAMESPACE" rollout restart "daemonset/$CONTROLLER_DAEMONSET"
fi
kube -n "$CONTROLLER_NAMESPACE" rollout status "daemonset/$CONTROLLER_DAEMONSET" --timeout=5m

echo "$SCRIPT: cluster $CLUSTER_NAME is up (kubectl context $KUBE_CONTEXT); next: kind/verify.sh"

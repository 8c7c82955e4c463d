#!/usr/bin/env bash
# Installs the tools it needs if they are missing (kind/install-tools.sh; root on a fresh
# machine), then creates a Kind cluster (kind/kind-config.yaml: a control plane and two
# workers) with Antrea as its CNI, installed with Helm; builds the controller's image with
# Docker, loads it into the nodes and deploys deploy/rbac.yaml and deploy/daemonset.yaml with
# that image (controller_manifests in kind/common.sh: deploy/kustomization.yaml rendered by
# `kubectl kustomize` with IMAGE as the container's image and the image's ID as the Pod
# template's annotation capture-controller/image-id), applied once.
# Safe to run again: an existing cluster and Antrea release are kept, and the DaemonSet rolls
# out exactly when the nodes do not run the image just built:
#   - IMAGE equal to the manifest's (capture-controller:dev), or another tag: the rendered
#     manifest always holds every object (unlike `kubectl set image --local`, which prints
#     nothing when the image is already the manifest's, and `kubectl apply` then fails with
#     "no objects passed to apply");
#   - a run again with an unchanged image: same tag, same ID, so the apply changes nothing and
#     nothing rolls out (the nodes already run that image);
#   - a rebuilt image under the same tag: its ID, hence the annotation, changes the Pod
#     template, and the DaemonSet rolls out onto the new build (with the tag alone nothing
#     would change, and the running Pods would keep the old build);
#   - a changed IMAGE: the container's image changes, and the DaemonSet rolls out.
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
revision=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
docker build --build-arg VERSION="$version" --build-arg GIT_REVISION="$revision" -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"

echo "== capture-controller"
# The ID names the build: a rebuild under an unchanged tag has a new one.
image_id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
controller_manifests "$IMAGE" "$image_id" | kube apply -f -
kube -n "$CONTROLLER_NAMESPACE" rollout status "daemonset/$CONTROLLER_DAEMONSET" --timeout=5m

echo "$SCRIPT: cluster $CLUSTER_NAME is up (kubectl context $KUBE_CONTEXT); next: kind/verify.sh"

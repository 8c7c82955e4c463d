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
# The image's name in deploy/daemonset.yaml, without its tag: what controller_manifests replaces.
CONTROLLER_IMAGE_NAME=capture-controller
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

# controller_manifests IMAGE IMAGE_ID: prints the manifests that kind/up.sh applies: deploy/ as
# `kubectl kustomize` renders it (deploy/kustomization.yaml: rbac.yaml, daemonset.yaml) with
#   - the container's image set to IMAGE, by an `images:` entry: [REGISTRY[:PORT]/]PATH[:TAG]
#     [@DIGEST]; without a tag or a digest it is PATH:latest, as for Docker;
#   - the Pod template annotated capture-controller/image-id: IMAGE_ID (the image's ID, from
#     `docker image inspect --format '{{.Id}}'`), so that a rebuild under the same tag changes
#     the Pod template, and rolls out, while the same build changes nothing.
# kustomize refuses a base given by an absolute path: the overlay is written to a temporary
# directory holding a copy of deploy/ as its base. The work runs in a subshell, whose EXIT trap
# removes that directory whatever happens and whose `die` ends only the subshell; `|| return`
# keeps the subshell's status (and keeps the ERR trap from printing its whole text). Left of
# `||`, the subshell runs without `set -e`: each step checks its own status.
controller_manifests() {
  (
    image=${1-} image_id=${2-} dir=''
    usage="usage: controller_manifests IMAGE IMAGE_ID"
    [[ -n $image ]] || die "controller_manifests: IMAGE is empty ($usage)"
    [[ -n $image_id ]] || die "controller_manifests: IMAGE_ID is empty ($usage)"
    # A ':' before a '/' is the registry's port, after the last '/' the tag. In variables: bash
    # 3.2 and 5 agree on a regex only when it is not quoted in [[ ]].
    reference='^(([A-Za-z0-9._-]+(:[0-9]+)?/)?[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*)(:([A-Za-z0-9_][A-Za-z0-9_.-]*))?(@([a-z0-9]+:[0-9a-f]{32,}))?$'
    id_syntax='^[A-Za-z0-9._:+-]+$'
    [[ $image =~ $reference ]] ||
      die "controller_manifests: '$image' is not an image reference ([REGISTRY/]PATH[:TAG][@DIGEST])"
    name=${BASH_REMATCH[1]} tag=${BASH_REMATCH[6]-} digest=${BASH_REMATCH[8]-}
    [[ -n $tag || -n $digest ]] || tag=latest
    [[ $image_id =~ $id_syntax ]] || die "controller_manifests: '$image_id' is not an image ID"
    require_tools kubectl

    trap '[[ -z $dir ]] || rm -rf "$dir"' EXIT
    dir=$(mktemp -d "${TMPDIR:-/tmp}/capture-controller-manifests.XXXXXX") ||
      die "controller_manifests: cannot create a temporary directory"
    cp -R "$ROOT/deploy" "$dir/base" || die "controller_manifests: cannot copy $ROOT/deploy"
    {
      echo "apiVersion: kustomize.config.k8s.io/v1beta1"
      echo "kind: Kustomization"
      echo "resources:"
      echo "  - base"
      echo "images:"
      echo "  - name: $CONTROLLER_IMAGE_NAME"
      echo "    newName: \"$name\""
      [[ -z $tag ]] || echo "    newTag: \"$tag\""
      [[ -z $digest ]] || echo "    digest: \"$digest\""
      echo "patches:"
      echo "  - patch: |-"
      echo "      apiVersion: apps/v1"
      echo "      kind: DaemonSet"
      echo "      metadata:"
      echo "        name: $CONTROLLER_DAEMONSET"
      echo "        namespace: $CONTROLLER_NAMESPACE"
      echo "      spec:"
      echo "        template:"
      echo "          metadata:"
      echo "            annotations:"
      echo "              capture-controller/image-id: \"$image_id\""
    } >"$dir/kustomization.yaml" || die "controller_manifests: cannot write the overlay"
    kubectl kustomize "$dir" || die "controller_manifests: kubectl kustomize failed"
  ) || return
}

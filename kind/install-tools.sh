#!/usr/bin/env bash
# Makes sure the tools of the main job are on PATH: docker, kind, kubectl, helm. Whatever is
# missing is installed, which needs root on Debian 12 / Ubuntu 24.04: Docker from the
# distribution (apt: docker.io), kind, kubectl and helm as the release binaries their projects
# publish, each checked against the SHA-256 published next to it. Tools already present are
# kept as they are. kind/up.sh runs this first.
# Environment: KIND_VERSION, KUBECTL_VERSION, HELM_VERSION, BIN_DIR (default /usr/local/bin).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KIND_VERSION=${KIND_VERSION:-v0.29.0}
KUBECTL_VERSION=${KUBECTL_VERSION:-v1.33.1} # the Kubernetes of kind v0.29.0's node image
HELM_VERSION=${HELM_VERSION:-v3.17.3}
BIN_DIR=${BIN_DIR:-/usr/local/bin}

missing=()
for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  die "missing ${missing[*]}: run $0 as root to install them, or install them yourself"
fi

arch=$(dpkg --print-architecture) # amd64 or arm64: the names every project uses
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# fetch URL FILE SUFFIX: downloads URL and checks it against the SHA-256 its project publishes
# at URL.sha256SUFFIX (kind's and helm's .sha256sum say "<hash>  <name>", kubectl's .sha256
# only "<hash>").
fetch() {
  local url=$1 file=$2 suffix=$3 want
  curl -fsSL --retry 3 -o "$file" "$url"
  want=$(curl -fsSL --retry 3 "$url.sha256$suffix" | awk '{print $1}')
  [[ -n $want ]] || die "no checksum published for $url"
  echo "$want  $file" | sha256sum --check --quiet || die "checksum mismatch for $url"
}

apt_updated=false
install_apt() {
  export DEBIAN_FRONTEND=noninteractive
  if [[ $apt_updated == false ]]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt_updated=true
  fi
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"
}

# kind, kubectl and helm are downloaded with curl: needed unless docker alone is missing.
if [[ ${missing[*]} != docker ]]; then
  command -v curl >/dev/null 2>&1 || install_apt curl ca-certificates
fi

for tool in "${missing[@]}"; do
  echo "== installing $tool"
  case $tool in
    docker)
      install_apt docker.io
      # Without systemd (a container), start the daemon by hand.
      if ! docker info >/dev/null 2>&1; then
        if command -v systemctl >/dev/null 2>&1 && systemctl start docker 2>/dev/null; then :; else
          (dockerd >/var/log/dockerd.log 2>&1 &)
        fi
      fi
      wait_for 60 "the Docker daemon" docker info
      ;;
    kind)
      fetch "https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-linux-$arch" \
        "$tmp/kind" sum
      install -m 0755 "$tmp/kind" "$BIN_DIR/kind"
      ;;
    kubectl)
      fetch "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/$arch/kubectl" "$tmp/kubectl" ""
      install -m 0755 "$tmp/kubectl" "$BIN_DIR/kubectl"
      ;;
    helm)
      fetch "https://get.helm.sh/helm-$HELM_VERSION-linux-$arch.tar.gz" "$tmp/helm.tar.gz" sum
      tar -xzf "$tmp/helm.tar.gz" -C "$tmp" "linux-$arch/helm"
      install -m 0755 "$tmp/linux-$arch/helm" "$BIN_DIR/helm"
      ;;
  esac
done
require_tools docker kind kubectl helm
echo "$SCRIPT: docker, kind, kubectl and helm are ready"

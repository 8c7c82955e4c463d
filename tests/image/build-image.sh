#!/usr/bin/env bash
# build-image.sh WORK_DIR
#
# Builds the project's Dockerfile, as it is, with a real builder (buildah, which reads
# Dockerfiles as Docker does) on a Debian 12 base made here, since no registry is reachable:
#   1. mmdebstrap --variant=minbase bookworm (from deb.debian.org, as the host's apt reaches it)
#      committed as localhost/debian:bookworm (once per WORK_DIR);
#   2. buildah bud --build-arg BASE_IMAGE=localhost/debian:bookworm: every RUN of both stages
#      runs (apt-get, the CMake build, deploy/image/runtime-packages.sh, the ldd check);
#   3. the image saved as a Docker archive tagged capture-controller:dev, the DaemonSet's image,
#      for `ctr images import`.
# Prints the archive's path. Everything (buildah's storage included) stays under WORK_DIR; the
# machine's own container storage is not touched. The build's log is WORK_DIR/build.log.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

fail() {
  echo "build-image.sh: $*" >&2
  exit 1
}

[[ $# -eq 1 ]] || fail "usage: build-image.sh WORK_DIR"
[[ $EUID -eq 0 ]] || fail "needs root (buildah's chroot isolation, mmdebstrap)"
for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed (packages.txt, role test)"
done
mkdir -p "$1"
work=$(cd "$1" && pwd)
log=$work/build.log
: >"$log"
base=localhost/debian:bookworm
image=localhost/capture-controller:dev
archive=$work/capture-controller.tar

# overlay where the kernel lets this process mount it, else vfs (slower, always works).
driver=vfs
probe=$(mktemp -d "$work/overlay-probe.XXXXXX")
mkdir -p "$probe/l" "$probe/u" "$probe/w" "$probe/m"
if mount -t overlay overlay -o "lowerdir=$probe/l,upperdir=$probe/u,workdir=$probe/w" \
  "$probe/m" 2>/dev/null; then
  umount "$probe/m"
  driver=overlay
fi
rm -rf "$probe"
storage=(--root "$work/storage" --runroot "$work/run" --storage-driver "$driver")

step() {
  echo "== $*" >>"$log"
  echo "build-image.sh: $*" >&2
}
# run COMMAND...: runs it with its output in the log; on failure, fails with the log's tail.
run() {
  if ! "$@" >>"$log" 2>&1; then
    fail "$1 failed; the end of $log:"$'\n'"$(tail -n 40 "$log")"
  fi
}

if ! buildah "${storage[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  step "base image $base (mmdebstrap bookworm, minbase)"
  rm -f "$work/bookworm.tar"
  run mmdebstrap --variant=minbase --quiet bookworm "$work/bookworm.tar" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  container=$(buildah "${storage[@]}" from scratch)
  run buildah "${storage[@]}" add "$container" "$work/bookworm.tar" /
  run buildah "${storage[@]}" commit --quiet --rm "$container" "$base"
  rm -f "$work/bookworm.tar"
fi

revision=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [[ $revision != unknown ]] && ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then
  revision+=-dirty
fi
step "buildah bud $ROOT/Dockerfile on $base (storage driver $driver, revision $revision)"
# --format docker: Docker's own image format, which keeps the Dockerfile's SHELL (OCI drops it).
run buildah "${storage[@]}" bud --format docker --isolation chroot --network host \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=test" \
  --build-arg "GIT_REVISION=$revision" --tag "$image" --file "$ROOT/Dockerfile" "$ROOT"

step "saving $image as $archive"
rm -f "$archive"
run buildah "${storage[@]}" push --quiet "$image" "docker-archive:$archive:capture-controller:dev"
echo "$archive"

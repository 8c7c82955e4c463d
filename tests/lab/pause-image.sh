#!/usr/bin/env bash
# Prints the path of an OCI image archive holding the lab's pause image (pause.c, compiled
# statically), building it on first use. The archive is packed by hand (one uncompressed layer,
# an image config, a manifest and an index, each named by its sha256), so no registry and no
# image tool is needed: `ctr images import` takes it as it is.
#   pause-image.sh CACHE_DIR
# Cached by content: the file name carries a hash of this script and pause.c, so a change to
# either builds a new image and an unchanged one costs nothing. Safe to run concurrently.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${1:?usage: pause-image.sh CACHE_DIR}
KEY=$(cat "$HERE/pause-image.sh" "$HERE/pause.c" | sha256sum | cut -c1-16)
OUT=$CACHE/pause-$KEY.tar
if [[ -f $OUT ]]; then
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
case $(uname -m) in
  x86_64) ARCH=amd64 ;;
  aarch64) ARCH=arm64 ;;
  *) ARCH=$(uname -m) ;;
esac

mkdir -p "$WORK/rootfs" "$WORK/oci/blobs/sha256"
gcc -Os -static -s -o "$WORK/rootfs/pause" "$HERE/pause.c"
# Deterministic layer: same input, same digest.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$WORK/rootfs" \
  -cf "$WORK/layer.tar" pause

# blob FILE: stores FILE under its digest, prints "<digest-hex> <size>"
blob() {
  local sum size
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$WORK/oci/blobs/sha256/$sum"
  echo "$sum $size"
}

read -r LAYER LAYER_SIZE < <(blob "$WORK/layer.tar")
# An uncompressed layer's diff_id is its digest.
printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$ARCH" "$LAYER" >"$WORK/config.json"
read -r CONFIG CONFIG_SIZE < <(blob "$WORK/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$CONFIG" "$CONFIG_SIZE" "$LAYER" "$LAYER_SIZE" >"$WORK/manifest.json"
read -r MANIFEST MANIFEST_SIZE < <(blob "$WORK/manifest.json")
# The ref name is a bare tag; the importer adds the repository (ctr import --base-name).
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
  "$MANIFEST" "$MANIFEST_SIZE" "$KEY" >"$WORK/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$WORK/oci/oci-layout"

tar -C "$WORK/oci" -cf "$WORK/image.tar" oci-layout index.json blobs
mv -f "$WORK/image.tar" "$OUT"
echo "$OUT"

#!/usr/bin/env bash
# fetch-containerd.sh SUITE VERSION DEST_DIR
#
# The containerd of a Debian suite for the end-to-end tests' containerd matrix: fetches and
# unpacks the suite's `containerd` package with debian-package.sh (an unpacked version is
# reused), checks that its containerd is upstream VERSION (e.g. 1.7.24 in trixie, 2.1.9 in sid),
# and points DEST_DIR/containerd-VERSION at it: the directory that CAPTURE_CONTROLLER_LAB_CONTAINERD
# names for the lab (usr/bin/containerd, containerd-shim-runc-v2, ctr).
#
# The suite's current package is taken, not a pinned Debian revision: a suite keeps only its
# newest, so a pin would break at its next upload, while a new upstream version is a change
# that this check reports. Under CAPTURE_CONTROLLER_REQUIRE_E2E=1 (tests/run-all.sh) every
# failure is one; otherwise a package that cannot be fetched (no network) exits 77, which
# ctest counts as a skip, and the tests that need it skip too.
set -euo pipefail

fail() {
  echo "fetch-containerd.sh: $*" >&2
  exit 1
}

[[ $# -eq 3 ]] || fail "usage: fetch-containerd.sh SUITE VERSION DEST_DIR"
suite=$1 version=$2 dest=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! unpacked=$("$here/debian-package.sh" "$suite" containerd "$dest"); then
  if [[ ${CAPTURE_CONTROLLER_REQUIRE_E2E:-} != 1 ]]; then
    echo "fetch-containerd.sh: skipped: cannot fetch containerd from $suite" \
      "(set CAPTURE_CONTROLLER_REQUIRE_E2E=1 to make this a failure)" >&2
    exit 77
  fi
  fail "cannot fetch containerd from $suite"
fi

bin=$unpacked/usr/bin
for b in containerd containerd-shim-runc-v2 ctr; do
  [[ -x $bin/$b ]] || fail "$unpacked has no usr/bin/$b"
done
# "containerd github.com/containerd/containerd/v2 2.1.9+unknown" (the third field; 1.x adds the
# Debian revision as a fourth).
said=$("$bin/containerd" --version) || fail "$bin/containerd --version failed"
upstream=$(awk '{print $3}' <<<"$said")
upstream=${upstream#v}
case $upstream in
  "$version" | "$version"[~+-]*) ;;
  *) fail "$suite's containerd is now $upstream ($said), not $version: update the matrix in tests/CMakeLists.txt" ;;
esac

# Atomically, as tests of another version may read their own link meanwhile.
link=$dest/containerd-$version
ln -sfn "$unpacked" "$link.tmp.$$"
mv -T "$link.tmp.$$" "$link"
echo "containerd $upstream from $suite: $link -> $unpacked"

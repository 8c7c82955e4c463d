#!/usr/bin/env bash
# Runs every test on a fresh Debian 12 or Ubuntu 24.04 machine, as root: installs with apt
# what packages.txt marks `build` or `test`, builds with CMake, and runs ctest. The
# end-to-end tests start their own containerd, so here a missing prerequisite is a failure,
# never a skip.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build}

if [[ $EUID -ne 0 ]]; then
  echo "run-all.sh: run as root (apt installs, network namespaces, containerd)" >&2
  exit 1
fi

mapfile -t wanted < <(awk '!/^#/ && NF >= 2 && $2 ~ /(^|,)(build|test)(,|$)/ {print $1}' \
  "$ROOT/packages.txt")
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' && continue
  # Docker CE's containerd.io ships containerd and runc under its own name and conflicts with
  # Debian's packages: a binary already on PATH counts, so Docker is never replaced.
  if [[ $p == containerd || $p == runc ]] && command -v "$p" >/dev/null 2>&1; then continue; fi
  missing+=("$p")
done
if ((${#missing[@]})); then
  echo "run-all.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  # --no-remove: fail rather than uninstall anything to make room.
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends --no-remove \
    "${missing[@]}"
fi

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD" -j"$(nproc)"
export CAPTURE_CONTROLLER_REQUIRE_E2E=1
ctest --test-dir "$BUILD" --output-on-failure -j"$(nproc)" --timeout 600

#!/usr/bin/env bash
# runtime-packages.sh BINARY: prints, one per line and sorted, the packages of this system that
# ship the shared libraries BINARY loads. The Dockerfile runs it in the builder stage and
# installs exactly these in the final image, so the image follows the distribution's own
# package names (Ubuntu 24.04's t64 renames, say) without a list written by hand.
set -euo pipefail

binary=${1:?usage: runtime-packages.sh BINARY}
[[ -x $binary ]] || {
  echo "runtime-packages.sh: $binary is not an executable" >&2
  exit 1
}

# The package that ships a file. ldd reports paths through the loader's cache, which may
# name /lib while dpkg registered /usr/lib (or the other way round) on merged-/usr systems.
owner_of() {
  local path=$1 real candidate
  real=$(readlink -f "$path")
  for candidate in "$path" "$real" "/usr$path" "${path#/usr}" "/usr$real" "${real#/usr}"; do
    # "pkg:arch: /path"; a path that several packages share reads "pkg1, pkg2: /path".
    if dpkg-query -S "$candidate" 2>/dev/null | awk -F': ' '!/^diversion/ {print $1; exit}' |
      tr ',' '\n' | sed 's/^ *//; s/:.*//' | grep .; then
      return 0
    fi
  done
  echo "runtime-packages.sh: no package ships $path" >&2
  return 1
}

libraries=$(ldd "$binary") || {
  echo "runtime-packages.sh: ldd failed on $binary (not dynamically linked?)" >&2
  exit 1
}
if grep -q 'not found' <<<"$libraries"; then
  echo "runtime-packages.sh: $binary needs libraries this system lacks:" >&2
  grep 'not found' <<<"$libraries" >&2
  exit 1
fi
# "libfoo.so.1 => /usr/lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"; the vDSO and the loader
# itself have no "=>", and the loader comes with libc.
awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$libraries" | while read -r path; do
  owner_of "$path"
done | sort -u

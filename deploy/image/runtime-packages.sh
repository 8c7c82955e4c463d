#!/usr/bin/env bash
# runtime-packages.sh BINARY: prints, one per line and sorted, the packages of this system that
# ship the shared libraries BINARY loads. The Dockerfile runs it in the builder stage and
# installs exactly these in the final image, so the image follows the distribution's own
# package names (Ubuntu 24.04's t64 renames, say) without a list written by hand.
set -euo pipefail

fail() {
  echo "runtime-packages.sh: $*" >&2
  exit 1
}

binary=${1:?usage: runtime-packages.sh BINARY}
[[ -x $binary ]] || fail "$binary is not an executable"
libraries=$(ldd "$binary") || fail "ldd failed on $binary (not dynamically linked?)"
if grep -q 'not found' <<<"$libraries"; then
  fail "$binary needs libraries this system lacks:"$'\n'"$(grep 'not found' <<<"$libraries")"
fi
# "libfoo.so.1 => /usr/lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"; the vDSO and the loader
# itself have no "=>", and the loader comes with libc.
paths=$(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$libraries")

# ldd reports paths through the loader's cache, which may name /lib where dpkg registered
# /usr/lib (or the other way round) on merged-/usr systems: every spelling of each path, as
# "path<TAB>spelling" lines, the one ldd gave first.
spellings=$(while read -r path; do
  real=$(readlink -f "$path")
  for spelling in "$path" "$real" "/usr$path" "${path#/usr}" "/usr$real" "${real#/usr}"; do
    printf '%s\t%s\n' "$path" "$spelling"
  done
done <<<"$paths")

# One dpkg-query for all of them, as each call reads the whole package database. It prints
# "pkg[:arch][, pkg2[:arch]]: /path" for every spelling that some package ships.
# shellcheck disable=SC2046  # one argument per spelling; library paths have no spaces
owners=$(dpkg-query -S $(cut -f2 <<<"$spellings" | sort -u) 2>/dev/null |
  grep -v '^diversion' || true)

# For each library, the packages of its first spelling that dpkg knows.
awk -F'\t' '
  FNR == NR { split($0, f, ": "); owner[f[2]] = f[1]; next }
  !($1 in done) && ($2 in owner) {
    done[$1] = 1
    n = split(owner[$2], packages, ", ")
    for (i = 1; i <= n; i++) { sub(/:.*/, "", packages[i]); print packages[i] }
  }
  { seen[$1] = 1 }
  END {
    for (path in seen) {
      if (!(path in done)) {
        print "runtime-packages.sh: no package ships " path >"/dev/stderr"
        failed = 1
      }
    }
    exit failed
  }
' <(printf '%s\n' "$owners") <(printf '%s\n' "$spellings") | sort -u

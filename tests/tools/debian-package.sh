#!/usr/bin/env bash
# debian-package.sh SUITE PACKAGE[=VERSION] DEST_DIR
#
# Fetches one package of a Debian suite (bookworm, trixie, sid, ...) from deb.debian.org and
# unpacks it with `dpkg -x` into DEST_DIR/<package>_<version>/, then prints that directory. The
# tests use it for what the machine's own distribution does not carry: other containerd
# versions, a kubectl of the version users run.
#
# It never touches the machine's apt: a private sources list, state and cache directory under
# DEST_DIR/.apt, checked against the Debian archive keyring (debian-archive-keyring, in
# packages.txt). Nothing is installed: dpkg -x only unpacks. An unpacked version is reused.
set -euo pipefail

fail() {
  echo "debian-package.sh: $*" >&2
  exit 1
}

[[ $# -eq 3 ]] || fail "usage: debian-package.sh SUITE PACKAGE[=VERSION] DEST_DIR"
suite=$1 wanted=$2 dest=$3
package=${wanted%%=*}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[[ -r $keyring ]] || fail "$keyring is missing: install debian-archive-keyring"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
arch=$(dpkg --print-architecture)

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
apt_dir=$dest/.apt/$suite
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/preferences.d"
echo "deb [arch=$arch signed-by=$keyring] $mirror $suite main" >"$apt_dir/sources.list"
apt_options=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::Etc::Preferences=/dev/null"
  -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::State::Status=/dev/null"
  -o "Dir::Cache=$apt_dir"
  -o "Dir::Cache::Archives=$apt_dir/archives"
  -o "Debug::NoLocking=true"
  -o "APT::Sandbox::User=root"
  -o "Acquire::Retries=3"
)

# One concurrent fetch per suite: ctest may start several tests that need the same one.
exec 9>"$apt_dir/lock"
flock 9

# The package index of a day is enough: refresh it when older.
if [[ -z $(find "$apt_dir/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 -print -quit) ]]; then
  # --error-on=any: an index that could not be fetched (no network) is an error, not a warning.
  apt-get "${apt_options[@]}" -qq --error-on=any update >"$apt_dir/update.log" 2>&1 ||
    fail "apt-get update for $suite failed:"$'\n'"$(tail -n 20 "$apt_dir/update.log")"
fi

version=${wanted#*=}
if [[ $version == "$wanted" ]]; then
  # A package the index lacks makes apt-cache fail: `|| true` lets the check below say so.
  version=$({ apt-cache "${apt_options[@]}" show --no-all-versions "$package" 2>/dev/null || true; } |
    awk '/^Version:/ && !v {v = $2} END {print v}')
  [[ -n $version ]] || fail "$suite has no package $package"
fi
out=$dest/${package}_${version}
if [[ ! -f $out/.unpacked ]]; then
  rm -rf "$out"
  (cd "$apt_dir/archives" && apt-get "${apt_options[@]}" -qq download "$package=$version") \
    >"$apt_dir/download.log" 2>&1 ||
    fail "cannot download $package=$version from $suite:"$'\n'"$(tail -n 20 "$apt_dir/download.log")"
  deb=$(find "$apt_dir/archives" -maxdepth 1 -name "${package}_*.deb" | sort | tail -n 1)
  # The file name has the version with ':' escaped; dpkg-deb tells the real one.
  [[ $(dpkg-deb -f "$deb" Version) == "$version" ]] || fail "downloaded $deb is not $version"
  dpkg -x "$deb" "$out"
  rm -f "$deb"
  touch "$out/.unpacked"
fi
echo "$out"

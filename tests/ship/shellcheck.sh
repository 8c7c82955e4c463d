#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository: the *.sh files, and the files without
# an extension whose first line names sh or bash (.ci/run among them). Fails on any finding.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

if ! command -v shellcheck >/dev/null 2>&1; then
  echo "shellcheck.sh: shellcheck is not installed (packages.txt, role test)" >&2
  exit 1
fi

# Tracked and new files alike, without what .gitignore excludes; a tree without git history
# (an unpacked archive) is walked instead.
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard
  else
    find . \( -name .git -o -name 'build*' \) -prune -o -type f -printf '%P\0'
  fi
}

scripts=()
while IFS= read -r -d '' file; do
  [[ -f $file ]] || continue # listed by git but deleted in the work tree
  name=${file##*/}
  if [[ $name == *.sh ]]; then
    scripts+=("$file")
  elif [[ $name != *.* ]] && head -n 1 "$file" | grep -Eq '^#!.*[/ ](ba)?sh([[:space:]]|$)'; then
    scripts+=("$file")
  fi
done < <(list_files)

if ((${#scripts[@]} == 0)); then
  echo "shellcheck.sh: found no shell script: the file listing is broken" >&2
  exit 1
fi
printf 'shellcheck: %s\n' "${scripts[@]}"
shellcheck --external-sources "${scripts[@]}"
echo "shellcheck.sh: ${#scripts[@]} scripts clean"

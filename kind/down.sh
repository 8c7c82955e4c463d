#!/usr/bin/env bash
# Deletes the Kind cluster of kind/up.sh, and with it everything deployed in it.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

require_tools kind
kind delete cluster --name "$CLUSTER_NAME"

#!/usr/bin/env bash
# links-no-client-library.sh BINARY...: fails when a binary loads gRPC, Protobuf, libcurl or
# yaml-cpp. The capture policy and the worker see the runtime, the API server and processes
# only through header-only interfaces (cri_api, k8s_api, proc_api), so their unit tests must
# link none of the clients behind them.
set -euo pipefail
(($# > 0)) || { echo "usage: links-no-client-library.sh BINARY..." >&2; exit 2; }
failed=0
for binary in "$@"; do
  libraries=$(ldd "$binary") || { echo "ldd failed on $binary" >&2; exit 1; }
  if clients=$(grep -E 'lib(grpc|gpr|protobuf|curl|yaml-cpp)' <<<"$libraries"); then
    echo "$binary links a client library it must not:" >&2
    echo "$clients" >&2
    failed=1
  else
    echo "$binary: $(wc -l <<<"$libraries") libraries, no gRPC, Protobuf, libcurl or yaml-cpp"
  fi
done
exit "$failed"

#pragma once

#include <gflags/gflags.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/runtime_client.h"

// The flags of every subcommand, defined in flags.cc so that --help lists them in one place.
DECLARE_string(node_name);
DECLARE_string(cri_endpoint);
DECLARE_string(cri_timeout);
DECLARE_string(capture_dir);
DECLARE_int32(max_files);
DECLARE_string(kubeconfig);
DECLARE_string(http_address);
DECLARE_string(tcpdump);
DECLARE_string(resync_period);
DECLARE_bool(json);
DECLARE_bool(paths);
DECLARE_string(pod_uid);
DECLARE_string(pod);

namespace cmd {

// A flag's value as a positive duration (500ms, 2s), or an error naming the flag.
absl::StatusOr<absl::Duration> positiveDuration(const char* flag, const std::string& value);
// --cri-endpoint and --cri-timeout.
absl::StatusOr<cri::RuntimeClientOptions> criOptions();

}  // namespace cmd

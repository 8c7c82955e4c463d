#include "capture/tcpdump.h"

#include "absl/strings/str_cat.h"
#include "capture/spawn.h"
#include "glog/logging.h"

namespace capture {

std::vector<std::string> TcpdumpCommand::argv(int files, const std::string& file_path) const {
  return {path, "-C", file_size, "-W", std::to_string(files), "-w", file_path, "-Z", "root", "-U"};
}

absl::StatusOr<TcpdumpCommand> probeTcpdump(const std::string& path, Duration timeout) {
  const auto run = [&](std::vector<std::string> argv) {
    return runToCompletion(SpawnSpec{std::move(argv), {"LC_ALL=C"}, -1}, timeout);
  };
  auto with_suffix = run({path, "-C", "1M", "--version"});
  if (!with_suffix.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot run tcpdump at ", path, ": ", with_suffix.status().message()));
  }
  if (with_suffix->status.exit_code == 0) return TcpdumpCommand{path, "1M"};

  auto plain = run({path, "--version"});
  if (!plain.ok()) return plain.status();
  if (plain->status.exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " --version ", plain->status.describe(), ": ", plain->stderr_tail));
  }
  LOG(INFO) << path << " rejects -C 1M (" << with_suffix->stderr_tail
            << "): using -C 1 (1,000,000 bytes per file)";
  return TcpdumpCommand{path, "1"};
}

}  // namespace capture

#include "capture/tcpdump.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "capture/tcpdump_stats.h"
#include "glog/logging.h"
#include "proc/spawn.h"

namespace capture {

std::string tcpdumpErrorLines(absl::string_view stderr_tail) {
  std::vector<absl::string_view> kept;
  for (absl::string_view line : absl::StrSplit(stderr_tail, '\n')) {
    TcpdumpCounts ignored;
    if (line.empty() ||
        parseTcpdumpStatsLine(std::string_view(line.data(), line.size()), ignored) ||
        absl::StartsWith(line, "tcpdump: listening on ")) {
      continue;
    }
    kept.push_back(line);
  }
  return absl::StrJoin(kept, "\n");
}

std::vector<std::string> TcpdumpCommand::argv(int files, const std::string& file_path) const {
  CaptureSpec spec;
  spec.files = files;
  return argv(spec, file_path);
}

std::vector<std::string> TcpdumpCommand::argv(const CaptureSpec& spec,
                                              const std::string& file_path) const {
  std::vector<std::string> args = {path, "-C",      file_size, "-W",   std::to_string(spec.files),
                                   "-w", file_path, "-Z",      "root", "-U"};
  if (spec.packets) {
    args.push_back("-c");
    args.push_back(std::to_string(*spec.packets));
  }
  if (!spec.filter.empty()) {
    args.push_back("--");
    args.push_back(spec.filter);
  }
  return args;
}

absl::StatusOr<TcpdumpCommand> probeTcpdump(const std::string& path, base::Duration timeout) {
  const auto run = [&](std::vector<std::string> argv) {
    return proc::runToCompletion(proc::SpawnSpec{std::move(argv), {"LC_ALL=C"}, -1}, timeout);
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

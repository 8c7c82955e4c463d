#include "capture/tcpdump.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "glog/logging.h"
#include "proc/spawn.h"

namespace capture {
namespace {

bool isStatisticsLine(absl::string_view line) {
  const size_t count_end = line.find_first_not_of("0123456789");
  if (count_end == 0 || count_end == absl::string_view::npos) return false;
  absl::string_view rest = line.substr(count_end);
  if (!absl::ConsumePrefix(&rest, " packets ") && !absl::ConsumePrefix(&rest, " packet ")) {
    return false;
  }
  return rest == "captured" || rest == "received by filter" || rest == "dropped by kernel" ||
         rest == "dropped by interface";
}

}  // namespace

std::string tcpdumpErrorLines(absl::string_view stderr_tail) {
  std::vector<absl::string_view> kept;
  for (absl::string_view line : absl::StrSplit(stderr_tail, '\n')) {
    if (line.empty() || isStatisticsLine(line) ||
        absl::StartsWith(line, "tcpdump: listening on ")) {
      continue;
    }
    kept.push_back(line);
  }
  return absl::StrJoin(kept, "\n");
}

std::vector<std::string> TcpdumpCommand::argv(int files, const std::string& file_path) const {
  return {path, "-C", file_size, "-W", std::to_string(files), "-w", file_path, "-Z", "root", "-U"};
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

#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "capture/annotation.h"

namespace capture {

// Debian 12, Ubuntu 24.04 and later ship tcpdump as /usr/bin/tcpdump.
inline constexpr char kDefaultTcpdumpPath[] = "/usr/bin/tcpdump";

// How to run the installed tcpdump.
//
// `-C` differs between versions: tcpdump 4.99.3 (Debian 12) and 4.99.4 (Ubuntu 24.04) take a
// plain integer in units of 1,000,000 bytes and reject "1M" ("invalid file size 1M"); newer
// tcpdump also takes a k/M/G suffix (M = 1,048,576 bytes; some 4.99.x builds only a lower-case
// one). probeTcpdump() asks the binary itself instead of guessing from its version.
struct TcpdumpCommand {
  std::string path = kDefaultTcpdumpPath;
  std::string file_size = "1";  // the -C argument: "1M" where accepted, else "1" (10^6 bytes)

  // tcpdump -C <size> -W <files> -w <file_path> -Z root -U
  //   -Z root: tcpdump otherwise drops to its own user after opening the first file, and can
  //            then neither open the next rotated file nor keep PR_SET_PDEATHSIG (a change of
  //            uid clears it);
  //   -U:      write each packet out as it is saved, so files fill while traffic flows.
  //   -c <packets>: a packet bound (tcpdump then exits 0 by itself);
  //   -- <filter>: the filter as one word after the options, so that it can never be read as
  //            an option or a file name ("-w /etc/passwd" is an expression that fails to
  //            compile, not a second output file).
  std::vector<std::string> argv(int files, const std::string& file_path) const;
  std::vector<std::string> argv(const CaptureSpec& spec, const std::string& file_path) const;
};

// What tcpdump's stderr says about why it ended: its lines without the "listening on" banner
// and the statistics it prints whenever it ends ("12 packets captured", "... received by
// filter", "... dropped by kernel", "... dropped by interface") or is sent SIGUSR1 (all on one
// line; parseTcpdumpStatsLine knows both), which differ from one run to the next. Two exits
// with the same status and the same error lines are the same failure.
std::string tcpdumpErrorLines(absl::string_view stderr_tail);

// Runs `<path> -C 1M --version` once: tcpdump parses options in order, so an unsupported size
// fails ("invalid file size") before --version prints and exits 0. Falls back to "1" when only
// `<path> --version` succeeds; fails when tcpdump does not run at all.
absl::StatusOr<TcpdumpCommand> probeTcpdump(const std::string& path,
                                            base::Duration timeout = std::chrono::seconds(10));

}  // namespace capture

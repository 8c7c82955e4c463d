#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace capture {

// The counts tcpdump reports (tcpdump.c, info(): libpcap's pcap_stats plus its own count).
struct TcpdumpCounts {
  uint64_t captured = 0;              // written to the files
  uint64_t received_by_filter = 0;    // matched the filter (libpcap's ps_recv)
  uint64_t dropped_by_kernel = 0;     // ps_drop: the ring was full
  uint64_t dropped_by_interface = 0;  // ps_ifdrop
  bool operator==(const TcpdumpCounts&) const = default;
};
// {"captured", "receivedByFilter", "droppedByKernel", "droppedByInterface"}, null for none: as
// /captures shows them and a SavedCapture keeps them.
nlohmann::json toJson(const std::optional<TcpdumpCounts>& counts);

// Reads tcpdump's statistics out of its stderr. tcpdump 4.99 reports them in two forms:
//
// - when it ends, one count per line (the last only when not 0):
//     5 packets captured
//     7 packets received by filter
//     0 packets dropped by kernel
//     3 packets dropped by interface
// - on SIGUSR1, one line, prefixed with its program name:
//     tcpdump: 5 packets captured, 7 packets received by filter, 0 packets dropped by kernel[, 3
//     packets dropped by interface]
//
// with "packet" for a count of 1. stderr is unbuffered and the summary is written from the
// signal handler, so a SIGUSR1 that arrives while tcpdump writes another line (its banner, say)
// splices the summary into that line, where it is not read: signal after the banner's newline.
class TcpdumpStatsParser {
 public:
  // A line longer than this is no statistics line: it is dropped rather than buffered.
  static constexpr size_t kMaxLineBytes = 4096;

  // Feeds stderr as it arrives; a chunk may end anywhere, even inside a line. Returns true when
  // `chunk` completed at least one report (then counts() is new). An end-of-run report is
  // complete with its "dropped by kernel" line; an "interface" line right after it is merged
  // into the same counts (and returns true again). Other lines are ignored.
  bool feed(std::string_view chunk);

  // The last complete report, nullopt until there is one.
  std::optional<TcpdumpCounts> counts() const { return counts_; }

  // Whether tcpdump printed its banner ("tcpdump: listening on eth0, link-type ..."). It sets
  // its SIGUSR1 handler just before (tcpdump.c, main()): until then SIGUSR1's default action,
  // termination, would end the capture.
  bool listening() const { return listening_; }

 private:
  bool takeLine(std::string_view line);

  std::string partial_line_;
  bool skipping_long_line_ = false;
  // The end-of-run report being read: how many of its first three lines came, in order.
  TcpdumpCounts pending_;
  int pending_lines_ = 0;
  bool last_line_completed_report_ = false;
  bool listening_ = false;
  std::optional<TcpdumpCounts> counts_;
};

// One line of stderr, without its newline: true, with the counts it states set in `counts`
// (the others left as they are), when it is a statistics line in either form above. A summary
// line sets all four (dropped_by_interface to 0 when it does not mention it). Counts that do
// not fit in 64 bits, and anything not exactly of these forms, are no statistics line.
bool parseTcpdumpStatsLine(std::string_view line, TcpdumpCounts& counts);

}  // namespace capture

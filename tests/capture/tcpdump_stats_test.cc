#include "capture/tcpdump_stats.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "capture/tcpdump.h"
#include "tests/support/e2e_guard.h"
#include "tests/support/wait.h"

namespace capture {
namespace {

using namespace std::chrono_literals;

TcpdumpCounts countsOf(uint64_t captured, uint64_t received_by_filter, uint64_t dropped_by_kernel,
                       uint64_t dropped_by_interface = 0) {
  return TcpdumpCounts{captured, received_by_filter, dropped_by_kernel, dropped_by_interface};
}

// What tcpdump 4.99.3 (Debian 12) wrote, run as `tcpdump -i lo -w /dev/null`: SIGUSR1, then
// SIGINT.
constexpr char kBanner[] =
    "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n";
constexpr char kSummaryLine[] =
    "tcpdump: 120 packets captured, 240 packets received by filter, 0 packets dropped by kernel\n";
constexpr char kExitReport[] =
    "120 packets captured\n"
    "272 packets received by filter\n"
    "0 packets dropped by kernel\n";

TEST(ParseTcpdumpStatsLine, ReadsEachLineOfTheExitReport) {
  TcpdumpCounts counts = countsOf(9, 9, 9, 9);
  EXPECT_TRUE(parseTcpdumpStatsLine("5 packets captured", counts));
  EXPECT_EQ(counts, countsOf(5, 9, 9, 9));  // only the count the line states
  EXPECT_TRUE(parseTcpdumpStatsLine("7 packets received by filter", counts));
  EXPECT_TRUE(parseTcpdumpStatsLine("0 packets dropped by kernel", counts));
  EXPECT_TRUE(parseTcpdumpStatsLine("3 packets dropped by interface", counts));
  EXPECT_EQ(counts, countsOf(5, 7, 0, 3));
  // "packet" when the count is 1.
  EXPECT_TRUE(parseTcpdumpStatsLine("1 packet captured", counts));
  EXPECT_TRUE(parseTcpdumpStatsLine("1 packet received by filter", counts));
  EXPECT_TRUE(parseTcpdumpStatsLine("1 packet dropped by kernel", counts));
  EXPECT_TRUE(parseTcpdumpStatsLine("1 packet dropped by interface", counts));
  EXPECT_EQ(counts, countsOf(1, 1, 1, 1));
}

TEST(ParseTcpdumpStatsLine, ReadsTheSignalSummaryWithAndWithoutInterfaceDrops) {
  TcpdumpCounts counts = countsOf(9, 9, 9, 9);
  EXPECT_TRUE(parseTcpdumpStatsLine(
      "tcpdump: 5 packets captured, 7 packets received by filter, 0 packets dropped by kernel",
      counts));
  EXPECT_EQ(counts, countsOf(5, 7, 0, 0));
  EXPECT_TRUE(parseTcpdumpStatsLine(
      "tcpdump: 1 packet captured, 1 packet received by filter, 2 packets dropped by kernel, 3 "
      "packets dropped by interface",
      counts));
  EXPECT_EQ(counts, countsOf(1, 1, 2, 3));
}

TEST(ParseTcpdumpStatsLine, ReadsCountsUpTo64Bits) {
  TcpdumpCounts counts;
  EXPECT_TRUE(parseTcpdumpStatsLine("18446744073709551615 packets captured", counts));
  EXPECT_EQ(counts.captured, UINT64_MAX);
  EXPECT_FALSE(parseTcpdumpStatsLine("18446744073709551616 packets captured", counts));
  EXPECT_FALSE(parseTcpdumpStatsLine(std::string(40, '9') + " packets captured", counts));
  EXPECT_FALSE(parseTcpdumpStatsLine(
      "tcpdump: 5 packets captured, 99999999999999999999 packets received by filter, 0 packets "
      "dropped by kernel",
      counts));
  EXPECT_EQ(counts.captured, UINT64_MAX);  // untouched by what was not a statistics line
}

TEST(ParseTcpdumpStatsLine, IgnoresEverythingElse) {
  for (
      const std::string line : {
          "",
          "tcpdump: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
          "tcpdump: pcap_loop: The interface disappeared",
          "tcpdump: nosuch: No such device exists",
          "packets captured",
          "12 packets lost",
          "x 1 packet captured",
          " 5 packets captured",
          "5 packets captured ",
          "5  packets captured",
          "5 packets captured\r",
          "-5 packets captured",
          "+5 packets captured",
          "5 pkts captured",
          "5 packets dropped",
          "5 packets dropped by kernel, 3 packets dropped by interface",
          "tcpdump: 5 packets captured",
          "tcpdump: 5 packets captured, 7 packets received by filter",
          "tcpdump: 7 packets received by filter, 5 packets captured, 0 packets dropped by kernel",
          "tcpdump: 5 packets captured, 7 packets received by filter, 0 packets dropped by kernel, "
          "3 packets dropped by interface, 1 packet lost",
          "tcpdump: 5 packets captured, 7 packets received by filter, 0 packets dropped by "
          "kernel,",
          "tcp dump: 5 packets captured, 7 packets received by filter, 0 packets dropped by kernel",
          ": 5 packets captured, 7 packets received by filter, 0 packets dropped by kernel",
          "Maximum file limit reached: 5",
      }) {
    SCOPED_TRACE(line);
    TcpdumpCounts counts = countsOf(9, 9, 9, 9);
    EXPECT_FALSE(parseTcpdumpStatsLine(line, counts));
    EXPECT_EQ(counts, countsOf(9, 9, 9, 9));
  }
}

TEST(TcpdumpStatsParser, HasNoCountsBeforeAReport) {
  TcpdumpStatsParser parser;
  EXPECT_EQ(parser.counts(), std::nullopt);
  EXPECT_FALSE(parser.feed(kBanner));
  EXPECT_FALSE(parser.feed("tcpdump: pcap_loop: The interface disappeared\n"));
  EXPECT_EQ(parser.counts(), std::nullopt);
}

TEST(TcpdumpStatsParser, CompletesTheExitReportWithItsKernelLine) {
  TcpdumpStatsParser parser;
  EXPECT_FALSE(parser.feed(kBanner));
  EXPECT_FALSE(parser.feed("120 packets captured\n272 packets received by filter\n"));
  EXPECT_EQ(parser.counts(), std::nullopt);
  EXPECT_TRUE(parser.feed("0 packets dropped by kernel\n"));
  EXPECT_EQ(parser.counts(), countsOf(120, 272, 0));
}

TEST(TcpdumpStatsParser, MergesTheInterfaceLineIntoTheReportItFollows) {
  TcpdumpStatsParser parser;
  EXPECT_TRUE(parser.feed(
      "tcpdump: listening on v0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n"
      "tcpdump: pcap_loop: The interface disappeared\n"
      "0 packets captured\n"
      "4 packets received by filter\n"
      "0 packets dropped by kernel\n"));
  EXPECT_EQ(parser.counts(), countsOf(0, 4, 0));
  EXPECT_TRUE(parser.feed("1 packet dropped by interface\n"));
  EXPECT_EQ(parser.counts(), countsOf(0, 4, 0, 1));
  // Not again: an interface line belongs only right after a kernel line.
  EXPECT_FALSE(parser.feed("2 packets dropped by interface\n"));
  EXPECT_EQ(parser.counts(), countsOf(0, 4, 0, 1));
}

TEST(TcpdumpStatsParser, ReadsSummaryLinesAndKeepsTheLast) {
  TcpdumpStatsParser parser;
  EXPECT_TRUE(parser.feed(std::string(kBanner) + kSummaryLine));
  EXPECT_EQ(parser.counts(), countsOf(120, 240, 0));
  EXPECT_TRUE(parser.feed(
      "tcpdump: 121 packets captured, 250 packets received by filter, 1 packet dropped by kernel, "
      "2 packets dropped by interface\n"));
  EXPECT_EQ(parser.counts(), countsOf(121, 250, 1, 2));
  EXPECT_TRUE(parser.feed(kExitReport));
  EXPECT_EQ(parser.counts(), countsOf(120, 272, 0));  // the exit report has no interface drops
}

TEST(TcpdumpStatsParser, TakesChunksSplitAnywhere) {
  const std::string stderr_text = std::string(kBanner) + kSummaryLine +
                                  "tcpdump: pcap_loop: The interface disappeared\n" + kExitReport +
                                  "3 packets dropped by interface\n";
  TcpdumpStatsParser parser;
  std::vector<TcpdumpCounts> reports;
  for (char byte : stderr_text) {
    if (parser.feed(std::string_view(&byte, 1))) reports.push_back(*parser.counts());
  }
  EXPECT_EQ(reports, (std::vector<TcpdumpCounts>{countsOf(120, 240, 0), countsOf(120, 272, 0),
                                                 countsOf(120, 272, 0, 3)}));

  // And split at every position in two.
  for (size_t split = 0; split <= stderr_text.size(); ++split) {
    TcpdumpStatsParser halves;
    halves.feed(std::string_view(stderr_text).substr(0, split));
    halves.feed(std::string_view(stderr_text).substr(split));
    EXPECT_EQ(halves.counts(), countsOf(120, 272, 0, 3)) << "split at " << split;
  }
}

TEST(TcpdumpStatsParser, WaitsForTheNewlineOfALine) {
  TcpdumpStatsParser parser;
  EXPECT_FALSE(parser.feed("120 packets captured\n272 packets received by filter\n0 packets "));
  EXPECT_FALSE(parser.feed("dropped by kernel"));
  EXPECT_EQ(parser.counts(), std::nullopt);
  EXPECT_TRUE(parser.feed("\n"));
  EXPECT_EQ(parser.counts(), countsOf(120, 272, 0));
}

TEST(TcpdumpStatsParser, NeedsTheExitReportsLinesInOrderAndTogether) {
  TcpdumpStatsParser parser;
  // A kernel line without the two lines before it is a fragment, not a report.
  EXPECT_FALSE(parser.feed("0 packets dropped by kernel\n"));
  EXPECT_FALSE(parser.feed("7 packets received by filter\n0 packets dropped by kernel\n"));
  EXPECT_FALSE(parser.feed("5 packets captured\n0 packets dropped by kernel\n"));
  EXPECT_FALSE(
      parser.feed("5 packets captured\nsomething else\n7 packets received by filter\n"
                  "0 packets dropped by kernel\n"));
  EXPECT_FALSE(parser.feed("3 packets dropped by interface\n"));
  EXPECT_EQ(parser.counts(), std::nullopt);
  // A new "captured" line starts the report again.
  EXPECT_TRUE(
      parser.feed("5 packets captured\n6 packets captured\n7 packets received by filter\n"
                  "0 packets dropped by kernel\n"));
  EXPECT_EQ(parser.counts(), countsOf(6, 7, 0));
}

TEST(TcpdumpStatsParser, ListensOnceTheWholeBannerLineCame) {
  TcpdumpStatsParser parser;
  EXPECT_FALSE(parser.listening());
  parser.feed("tcpdump: verbose output suppressed, use -v[v]... for full protocol decode\n");
  parser.feed("tcpdump: listening on eth0, link-type EN10MB ");
  EXPECT_FALSE(parser.listening()) << "its line is not over: SIGUSR1 would splice into it";
  parser.feed("(Ethernet), snapshot length 262144 bytes\n");
  EXPECT_TRUE(parser.listening());
  parser.feed(
      "tcpdump: 1 packet captured, 1 packet received by filter, 0 packets dropped by "
      "kernel\n");
  EXPECT_TRUE(parser.listening());
}

TEST(TcpdumpStatsParser, SurvivesGarbageAndHugeNumbers) {
  TcpdumpStatsParser parser;
  EXPECT_FALSE(parser.feed(std::string("\0\xff\xfe garbage\n\n\n", 14)));
  EXPECT_FALSE(
      parser.feed("99999999999999999999999 packets captured\n"
                  "7 packets received by filter\n0 packets dropped by kernel\n"));
  EXPECT_FALSE(parser.feed(
      "tcpdump: 5 packets captured, 7 packets received by filter, 99999999999999999999999 packets "
      "dropped by kernel\n"));
  EXPECT_EQ(parser.counts(), std::nullopt);
  EXPECT_TRUE(parser.feed(kSummaryLine));
  EXPECT_EQ(parser.counts(), countsOf(120, 240, 0));
}

TEST(TcpdumpStatsParser, DropsLinesLongerThanTheLimit) {
  TcpdumpStatsParser parser;
  // Statistics at the end of a line far too long to be statistics: the whole line goes.
  const std::string long_line = std::string(TcpdumpStatsParser::kMaxLineBytes, 'x') + kSummaryLine;
  EXPECT_FALSE(parser.feed(long_line.substr(0, 100)));
  EXPECT_FALSE(parser.feed(long_line.substr(100)));
  EXPECT_EQ(parser.counts(), std::nullopt);
  // Megabytes without a newline keep nothing of them, and the next line is read as usual.
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(parser.feed(std::string(4096, 'y')));
  EXPECT_TRUE(parser.feed(std::string("\n") + kSummaryLine));
  EXPECT_EQ(parser.counts(), countsOf(120, 240, 0));
  // A line of exactly the limit is still read.
  const std::string counts =
      "5 packets captured, 7 packets received by filter, 0 packets "
      "dropped by kernel";
  const std::string padded_summary =
      "tcpdump: " + std::string(TcpdumpStatsParser::kMaxLineBytes - counts.size() - 9, '0') +
      counts;
  ASSERT_EQ(padded_summary.size(), TcpdumpStatsParser::kMaxLineBytes);
  EXPECT_TRUE(parser.feed(padded_summary + "\n"));
  EXPECT_EQ(parser.counts(), countsOf(5, 7, 0));
}

TEST(TcpdumpErrorLines, LeavesOutTheSignalSummaryToo) {
  EXPECT_EQ(tcpdumpErrorLines(std::string(kBanner) + kSummaryLine +
                              "tcpdump: pcap_loop: The interface disappeared\n" + kExitReport),
            "tcpdump: pcap_loop: The interface disappeared");
}

// The real tcpdump, on lo in this process's network namespace: what it writes to stderr on
// SIGUSR1 and when it ends is what the parser reads.
class RunningTcpdump {
 public:
  explicit RunningTcpdump(const std::vector<std::string>& args) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return;
    stderr_fd_ = pipe_fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    char lc_all[] = "LC_ALL=C";
    char* envp[] = {lc_all, nullptr};
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), envp) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
  }
  RunningTcpdump(const RunningTcpdump&) = delete;
  RunningTcpdump& operator=(const RunningTcpdump&) = delete;
  ~RunningTcpdump() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stderr_fd_ >= 0) ::close(stderr_fd_);
  }

  bool started() const { return pid_ > 0 && stderr_fd_ >= 0; }
  bool signal(int signo) const { return ::kill(pid_, signo) == 0; }

  // Reads stderr, as it comes, into `stderr_text` until `done` holds after a read, stderr ends
  // or the deadline passes. Returns whether `done` held.
  bool readUntil(const std::function<bool(std::string_view chunk)>& done,
                 std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      pollfd readable{stderr_fd_, POLLIN, 0};
      if (::poll(&readable, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[512];
      const ssize_t n = ::read(stderr_fd_, buffer, sizeof(buffer));
      if (n <= 0) return false;
      const std::string_view chunk(buffer, static_cast<size_t>(n));
      stderr_text.append(chunk);
      if (done(chunk)) return true;
    }
  }

  // The exit status, or nullopt if tcpdump has not ended by the deadline.
  std::optional<int> wait(std::chrono::milliseconds timeout = 10s) {
    int status = 0;
    if (!testsupport::waitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                                timeout)) {
      return std::nullopt;
    }
    pid_ = -1;
    return status;
  }

  std::string stderr_text;

 private:
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
};

TEST(TcpdumpStatsParser, ReadsTheInstalledTcpdumpsReports) {
  E2E_REQUIRE_ROOT();
  ASSERT_TRUE(std::filesystem::exists(kDefaultTcpdumpPath)) << "tcpdump is in packages.txt";
  RunningTcpdump tcpdump({kDefaultTcpdumpPath, "-i", "lo", "-n", "-w", "/dev/null"});
  ASSERT_TRUE(tcpdump.started());
  TcpdumpStatsParser parser;
  // It handles SIGUSR1 from before it prints its banner, but stderr is unbuffered: a signal
  // while the banner is being written puts the summary in the middle of the banner's line
  // (seen: "tcpdump: listening on lotcpdump: 0 packets captured, ..."). So the whole line first.
  ASSERT_TRUE(tcpdump.readUntil([&](std::string_view chunk) {
    parser.feed(chunk);
    return parser.listening();
  })) << tcpdump.stderr_text;
  EXPECT_EQ(parser.counts(), std::nullopt);

  ASSERT_TRUE(tcpdump.signal(SIGUSR1));
  ASSERT_TRUE(tcpdump.readUntil([&](std::string_view chunk) { return parser.feed(chunk); }))
      << "no statistics after SIGUSR1 in: " << tcpdump.stderr_text;
  EXPECT_NE(tcpdump.stderr_text.find("tcpdump: "), std::string::npos);
  EXPECT_TRUE(parser.counts().has_value());

  // When it ends: the exit report, and nothing else that tcpdumpErrorLines would report.
  ASSERT_TRUE(tcpdump.signal(SIGTERM));
  bool exit_report = false;
  tcpdump.readUntil([&](std::string_view chunk) {
    exit_report = parser.feed(chunk) || exit_report;
    return false;  // to the end of stderr
  });
  const std::optional<int> status = tcpdump.wait();
  ASSERT_TRUE(status.has_value()) << "tcpdump did not end on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  EXPECT_TRUE(exit_report) << tcpdump.stderr_text;
  ASSERT_TRUE(parser.counts().has_value());
  EXPECT_EQ(tcpdumpErrorLines(tcpdump.stderr_text), "") << tcpdump.stderr_text;
  RecordProperty("tcpdump_stderr", tcpdump.stderr_text);
}

}  // namespace
}  // namespace capture

#include "capture/tcpdump_stats.h"

#include <array>
#include <utility>

namespace capture {
namespace {

// What one line of tcpdump's stderr is, as far as statistics go.
enum class StatsLine {
  kNone,
  kCaptured,
  kReceivedByFilter,
  kDroppedByKernel,
  kDroppedByInterface,
  kSummary,  // the SIGUSR1 form: every count on one line
};

// The counts in the order tcpdump's info() prints them, with the words after each number.
struct CountPhrase {
  StatsLine line;
  std::string_view words;
  uint64_t TcpdumpCounts::*count;
};
constexpr std::array<CountPhrase, 4> kCountPhrases{{
    {StatsLine::kCaptured, "captured", &TcpdumpCounts::captured},
    {StatsLine::kReceivedByFilter, "received by filter", &TcpdumpCounts::received_by_filter},
    {StatsLine::kDroppedByKernel, "dropped by kernel", &TcpdumpCounts::dropped_by_kernel},
    {StatsLine::kDroppedByInterface, "dropped by interface", &TcpdumpCounts::dropped_by_interface},
}};

// Decimal digits only, and nullopt past uint64's range. tcpdump prints u_int today; a wider
// count is still a count.
std::optional<uint64_t> parseCount(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = c - '0';
    if (n > (UINT64_MAX - digit) / 10) return std::nullopt;
    n = n * 10 + digit;
  }
  return n;
}

// "<count> packet[s] <words>": which phrase of kCountPhrases, and sets its count.
const CountPhrase* parseCountPhrase(std::string_view phrase, TcpdumpCounts& counts) {
  const size_t space = phrase.find(' ');
  if (space == std::string_view::npos) return nullptr;
  const std::optional<uint64_t> count = parseCount(phrase.substr(0, space));
  if (!count) return nullptr;
  std::string_view rest = phrase.substr(space + 1);
  if (rest.starts_with("packets ")) {
    rest.remove_prefix(8);
  } else if (rest.starts_with("packet ")) {
    rest.remove_prefix(7);
  } else {
    return nullptr;
  }
  for (const CountPhrase& known : kCountPhrases) {
    if (rest == known.words) {
      counts.*known.count = *count;
      return &known;
    }
  }
  return nullptr;
}

// "tcpdump: " then the phrases, in tcpdump's order, separated by ", ": the interface drops
// only when there were some.
bool parseSummary(std::string_view line, TcpdumpCounts& counts) {
  const size_t prefix_end = line.find(": ");
  // The program name is argv[0]'s last component: one word.
  if (prefix_end == 0 || prefix_end == std::string_view::npos ||
      line.substr(0, prefix_end).find(' ') != std::string_view::npos) {
    return false;
  }
  std::string_view rest = line.substr(prefix_end + 2);
  TcpdumpCounts summary;
  size_t phrases = 0;
  while (phrases < kCountPhrases.size()) {
    const size_t separator = rest.find(", ");
    const CountPhrase* phrase = parseCountPhrase(rest.substr(0, separator), summary);
    if (phrase != &kCountPhrases[phrases]) return false;
    ++phrases;
    if (separator == std::string_view::npos) break;
    rest.remove_prefix(separator + 2);
    if (phrases == kCountPhrases.size()) return false;  // something after the last count
  }
  if (phrases < 3) return false;
  counts = summary;
  return true;
}

StatsLine parseStatsLine(std::string_view line, TcpdumpCounts& counts) {
  if (line.empty()) return StatsLine::kNone;
  if (line.front() >= '0' && line.front() <= '9') {
    const CountPhrase* phrase = parseCountPhrase(line, counts);
    return phrase == nullptr ? StatsLine::kNone : phrase->line;
  }
  return parseSummary(line, counts) ? StatsLine::kSummary : StatsLine::kNone;
}

}  // namespace

nlohmann::json toJson(const std::optional<TcpdumpCounts>& counts) {
  if (!counts) return nullptr;
  return {{"captured", counts->captured},
          {"receivedByFilter", counts->received_by_filter},
          {"droppedByKernel", counts->dropped_by_kernel},
          {"droppedByInterface", counts->dropped_by_interface}};
}

bool parseTcpdumpStatsLine(std::string_view line, TcpdumpCounts& counts) {
  return parseStatsLine(line, counts) != StatsLine::kNone;
}

bool TcpdumpStatsParser::feed(std::string_view chunk) {
  bool completed = false;
  while (!chunk.empty()) {
    const size_t newline = chunk.find('\n');
    const std::string_view piece = chunk.substr(0, newline);
    if (!skipping_long_line_) {
      if (partial_line_.size() + piece.size() > kMaxLineBytes) {
        partial_line_.clear();
        skipping_long_line_ = true;
      } else {
        partial_line_.append(piece);
      }
    }
    if (newline == std::string_view::npos) break;
    chunk.remove_prefix(newline + 1);
    // A line too long to be statistics still ends whatever report was being read.
    if (takeLine(skipping_long_line_ ? std::string_view() : std::string_view(partial_line_))) {
      completed = true;
    }
    partial_line_.clear();
    skipping_long_line_ = false;
  }
  return completed;
}

bool TcpdumpStatsParser::takeLine(std::string_view line) {
  TcpdumpCounts parsed = pending_;
  const StatsLine kind = parseStatsLine(line, parsed);
  const bool follows_report = std::exchange(last_line_completed_report_, false);
  switch (kind) {
    case StatsLine::kSummary:
      // Complete by itself; an end-of-run report it interrupts may still complete.
      counts_ = parsed;
      return true;
    case StatsLine::kCaptured:
      pending_ = TcpdumpCounts{};
      pending_.captured = parsed.captured;
      pending_lines_ = 1;
      return false;
    case StatsLine::kReceivedByFilter:
      if (pending_lines_ == 1) {
        pending_ = parsed;
        pending_lines_ = 2;
      } else {
        pending_lines_ = 0;
      }
      return false;
    case StatsLine::kDroppedByKernel:
      if (pending_lines_ != 2) {
        pending_lines_ = 0;
        return false;
      }
      counts_ = parsed;
      pending_lines_ = 0;
      last_line_completed_report_ = true;
      return true;
    case StatsLine::kDroppedByInterface:
      if (!follows_report) return false;
      counts_->dropped_by_interface = parsed.dropped_by_interface;
      return true;
    case StatsLine::kNone:
      pending_lines_ = 0;
      if (line.find(": listening on ") != std::string_view::npos) listening_ = true;
      return false;
  }
  return false;
}

}  // namespace capture

#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "capture/annotation.h"
#include "capture/tcpdump_stats.h"

namespace capture {

// What a capture needs to outlive the controller: a Completed capture keeps its files and is not
// started again; a bounded one goes on with the time (and packets) it has left. One small JSON
// file per capture, next to its files and named after them (".capture-web.pcap.state": hidden
// from `ls /capture-*`, and never a name isCaptureFileName() matches), written when the capture
// starts, as its counts come (for a packet bound) and when it completes; deleted with its files.
struct SavedCapture {
  std::string pod_uid;
  std::string pod_namespace;
  std::string pod_name;
  std::string file_base;
  CaptureSpec spec;
  std::string sandbox_id;  // where it ran: a capture whose sandbox changed meanwhile is new
  std::string netns_path;
  // When the capture began (its first tcpdump; not a restart's), in the wall clock: the
  // steady clock does not survive the process.
  std::chrono::system_clock::time_point began;
  bool completed = false;
  std::string completed_reason;
  // What every tcpdump of the capture wrote, for its packet bound; the last one's own report.
  uint64_t packets_captured = 0;
  std::optional<TcpdumpCounts> counts;

  bool operator==(const SavedCapture&) const = default;
};

// ".<file base>.state".
std::string savedCaptureFileName(absl::string_view file_base);
bool isSavedCaptureFileName(absl::string_view file_name);

std::string toText(const SavedCapture& saved);
// InvalidArgument naming what is wrong: not JSON, a field missing or of the wrong type, a spec
// that the annotations' own rules would refuse, a file base that is no capture's.
absl::StatusOr<SavedCapture> parseSavedCapture(absl::string_view text);

// The saved captures of one capture directory.
class SavedCaptures {
 public:
  explicit SavedCaptures(std::string dir);

  // Replaces the capture's file at once (a temporary file renamed over it): a crash leaves the
  // old or the new one, never half of one. The temporary file is always a new one (never written
  // through a link, a hard link or a FIFO under its name: such a thing fails the save).
  absl::Status save(const SavedCapture& saved) const;
  // Deletes it (and a temporary file a crash left), when it is a regular file; one that is not
  // there is no error, and neither is anything else under its name (a directory, a symbolic
  // link, a FIFO): that is left alone, with a warning in the log. Never follows a link.
  absl::Status remove(absl::string_view file_base) const;

  struct Loaded {
    std::string file_name;
    std::string file_base;                 // the capture's, from the file's name
    absl::StatusOr<SavedCapture> capture;  // why it cannot be read, otherwise
  };
  // Every saved capture of the directory, readable or not, by file name. Only regular files are
  // read (a link or a FIFO named like one is reported, not opened), and only up to 64 KiB.
  absl::StatusOr<std::vector<Loaded>> loadAll() const;

 private:
  std::string pathOf(absl::string_view file_name) const;
  std::string dir_;
};

}  // namespace capture

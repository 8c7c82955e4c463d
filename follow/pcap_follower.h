#pragma once

#include <sys/types.h>
#include <time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proc/unique_fd.h"

namespace follow {

// How a follow ended without an error.
enum class FollowEnd {
  kStopped,       // should_stop said so, and what was on disk has been written out
  kFilesRemoved,  // the capture's files were deleted or replaced: stopped, or restarted afresh
  kOutputClosed,  // the reader went away (EPIPE): Wireshark quit
};
const char* toString(FollowEnd end);

struct FollowOptions {
  // The capture's files in tcpdump's rotation order, all in one directory:
  // capture::rotationFileNames(base, N).
  std::vector<std::string> files;
  int output_fd = 1;
  // Asked after every wake-up (at most poll_interval apart): true once no more packets will
  // come (the capture stopped or completed). The follower then writes out what is on disk and
  // ends with kStopped. Called on the thread of run(); unset means never.
  std::function<bool()> should_stop;
  // The longest wait between two looks at the files when inotify says nothing (or is not
  // available).
  std::chrono::milliseconds poll_interval{200};
  // false: no inotify, only a look at the files every poll_interval (file systems whose writes
  // inotify does not see, as NFS; and tests of that path).
  bool use_inotify = true;
  // What is worth telling without ending: packets lost because the reader fell a whole rotation
  // behind, a file that ends in half a record. Unset means dropped.
  std::function<void(const std::string&)> warn;
};

// Counters, readable from any thread while run() goes on.
struct FollowStats {
  uint64_t packets = 0;        // records written out
  uint64_t bytes = 0;          // bytes written out, the global header included
  uint64_t files_started = 0;  // files (or rewrites of one) begun
  // Looks that found a record whose header is on disk and whose data is not yet: it waited.
  uint64_t partial_record_waits = 0;
};

// One pcap stream out of the files tcpdump -C -W writes in turn: one global header (the first
// file's), then every record of the file tcpdump writes now, from its beginning, then those
// appended to it, then the next file's, and so on across rotations and wrap-arounds.
//
// Rotation is seen in the files, never guessed from sizes. tcpdump writes one file at a time, so
// once another file of the ring is written after the current one's last write, tcpdump has
// closed the current file and what it holds is final: it is read to its end, then the first file
// written after it in rotation order (the next one, or the first file when the controller
// restarted a tcpdump that exited) from its start. inotify on the directory puts the writes of
// different files in order; mtimes do not (the file system's clock is coarse, and fine-grained only
// for files stat()ed since their last change), so they only pick the file to start with. Without
// inotify, the next file changing (created, truncated, written: its inode, size or mtime) since the
// current one began tells the same, later. The current file shrinking (tcpdump reopened it with
// O_TRUNC: N = 1, or the follower fell a whole ring behind) starts it again from its header; its
// path gone or holding another inode means the capture's files were deleted.
//
// Records go out whole: a record header whose data is not all on disk waits for the rest. Every
// file's global header is checked (pcap magic, microsecond or nanosecond, either byte order) and
// must match the first one's magic, version, snaplen and link type. Records are copied as they
// are, in the files' byte order.
//
// Not thread-safe, except stats(). run() blocks SIGPIPE on its thread while it runs, so that a
// closed output is EPIPE (kOutputClosed), never the end of the process.
class PcapFollower {
 public:
  explicit PcapFollower(FollowOptions options);
  PcapFollower(const PcapFollower&) = delete;
  PcapFollower& operator=(const PcapFollower&) = delete;

  // Follows until should_stop, the files' removal or a closed output (each a FollowEnd), or an
  // error: a file that is not pcap, a header unlike the first file's, a corrupt record length,
  // an I/O error.
  absl::StatusOr<FollowEnd> run();

  FollowStats stats() const;

 private:
  // A global header, as the file has it.
  struct PcapFormat {
    std::array<char, 24> raw{};
    bool big_endian = false;
    bool nanosecond = false;
    uint16_t version_major = 0;
    uint16_t version_minor = 0;
    uint32_t snaplen = 0;
    uint32_t link_type = 0;
  };
  // What stat() says of a path.
  struct FileState {
    bool exists = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    timespec mtime{};
    bool operator==(const FileState& other) const;
  };
  // The file being read now.
  struct CurrentFile {
    int index = 0;
    proc::UniqueFd fd;
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t offset = 0;     // the first byte not yet written out (0: the header is not read yet)
    uint64_t size_seen = 0;  // the largest size the file was seen with
    std::optional<PcapFormat> format;
    FileState next_at_begin;  // the next file when this one was begun
  };
  // What the look at the files before a read found.
  enum class Rotation {
    kNone,     // tcpdump may still write the current file
    kNext,     // tcpdump moved on: the current file is final, the next one follows
    kRewound,  // the current file was truncated and is written again from its start
    kRemoved,  // the capture's files were deleted or replaced
  };

  static FileState stateOf(const std::string& path);
  static absl::StatusOr<PcapFormat> parseGlobalHeader(const char* header, const std::string& path);
  static std::string describe(const PcapFormat& format);

  std::string pathOf(int index) const { return options_.files[index]; }
  absl::Status watchDirectory();
  void consumeEvents();
  void waitForChange();
  bool stopRequested() const;
  std::optional<int> newestFile() const;
  // The first file after `index`, in rotation order, written after `index` last was (inotify).
  std::optional<int> writtenAfter(int index) const;
  absl::Status begin(int index);
  Rotation rotation();
  absl::Status readHeader(bool final);
  absl::Status pump(bool final);
  absl::Status writeOut(const char* data, size_t size);
  absl::Status flush();
  absl::StatusOr<FollowEnd> followLoop();
  void warn(const std::string& message) const;
  int nextIndex(int index) const { return (index + 1) % static_cast<int>(options_.files.size()); }

  FollowOptions options_;
  std::string directory_;
  std::unordered_map<std::string, int> index_of_name_;  // file name within directory_ -> index
  proc::UniqueFd inotify_;
  // Per file of the ring: when it was last seen written (created, truncated, modified, closed
  // after writing, moved in), counted in writes_seen_; 0: not since the follower started.
  std::vector<uint64_t> last_write_;
  uint64_t writes_seen_ = 0;
  std::optional<PcapFormat> first_format_;
  std::optional<CurrentFile> current_;
  std::string read_buffer_;
  std::string output_buffer_;
  bool output_closed_ = false;  // EPIPE, or the pipe's reader is gone

  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> files_started_{0};
  std::atomic<uint64_t> partial_record_waits_{0};
};

}  // namespace follow

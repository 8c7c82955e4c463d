#include "follow/pcap_follower.h"

#include <errno.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace follow {
namespace {

constexpr size_t kGlobalHeaderBytes = 24;
constexpr size_t kRecordHeaderBytes = 16;
constexpr uint32_t kMicrosecondMagic = 0xa1b2c3d4;
constexpr uint32_t kNanosecondMagic = 0xa1b23c4d;
// No link type tcpdump captures needs more (libpcap's and Wireshark's own limit for them): a
// longer record is corruption, not a packet.
constexpr uint32_t kMaxRecordData = 256 * 1024;
// Some writers store records a little longer than the snaplen they announce (a trailing FCS):
// tolerated, where a length read from garbage is far off.
constexpr uint32_t kSnaplenSlack = 256;
// Read at most this much at once, and write out the whole records it holds after each read, so
// that the stream stays live and memory bounded. It always holds at least one whole record.
constexpr size_t kReadChunkBytes = 1024 * 1024;
static_assert(kReadChunkBytes > kRecordHeaderBytes + kMaxRecordData + kSnaplenSlack);
constexpr size_t kOutputFlushBytes = 256 * 1024;

constexpr uint32_t kWatchedEvents =
    IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_TO | IN_ONLYDIR;
// The events that show a file being written (tcpdump's open with O_TRUNC is an IN_MODIFY, or an
// IN_CREATE the first time round).
constexpr uint32_t kWriteEvents = IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO;

uint32_t little32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}
uint32_t big32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[3]} | uint32_t{b[2]} << 8 | uint32_t{b[1]} << 16 | uint32_t{b[0]} << 24;
}
uint16_t little16(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(b[0] | b[1] << 8);
}
uint16_t big16(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(b[1] | b[0] << 8);
}

bool newer(const timespec& a, const timespec& b) {
  return a.tv_sec != b.tv_sec ? a.tv_sec > b.tv_sec : a.tv_nsec > b.tv_nsec;
}

// Up to `size` bytes at `offset`: fewer only at the end of the file. -1 with errno on failure.
ssize_t preadUpTo(int fd, char* data, size_t size, uint64_t offset) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// SIGPIPE blocked on this thread for the guard's life, so that a write to a pipe whose reader
// left fails with EPIPE instead of ending the process; the SIGPIPE such a write left pending is
// taken before the old mask comes back.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&sigpipe_);
    sigaddset(&sigpipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigpipe_, &old_mask_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    if (!was_pending_) {
      const timespec no_wait{};
      while (sigtimedwait(&sigpipe_, nullptr, &no_wait) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t sigpipe_;
  sigset_t old_mask_;
  bool was_pending_ = false;
};

}  // namespace

const char* toString(FollowEnd end) {
  switch (end) {
    case FollowEnd::kStopped:
      return "stopped";
    case FollowEnd::kFilesRemoved:
      return "files removed";
    case FollowEnd::kOutputClosed:
      return "output closed";
  }
  return "?";
}

bool PcapFollower::FileState::operator==(const FileState& other) const {
  return exists == other.exists && dev == other.dev && ino == other.ino && size == other.size &&
         mtime.tv_sec == other.mtime.tv_sec && mtime.tv_nsec == other.mtime.tv_nsec;
}

PcapFollower::PcapFollower(FollowOptions options) : options_(std::move(options)) {}

FollowStats PcapFollower::stats() const {
  return FollowStats{.packets = packets_.load(),
                     .bytes = bytes_.load(),
                     .files_started = files_started_.load(),
                     .partial_record_waits = partial_record_waits_.load()};
}

void PcapFollower::warn(const std::string& message) const {
  LOG_IF(WARNING, !options_.warn) << message;
  if (options_.warn) options_.warn(message);
}

bool PcapFollower::stopRequested() const { return options_.should_stop && options_.should_stop(); }

PcapFollower::FileState PcapFollower::stateOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return FileState{};
  return FileState{
      .exists = true, .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size, .mtime = st.st_mtim};
}

absl::StatusOr<PcapFollower::PcapFormat> PcapFollower::parseGlobalHeader(const char* header,
                                                                         const std::string& path) {
  PcapFormat format;
  std::copy(header, header + kGlobalHeaderBytes, format.raw.begin());
  const uint32_t as_little = little32(header);
  const uint32_t as_big = big32(header);
  if (as_little == kMicrosecondMagic || as_little == kNanosecondMagic) {
    format.big_endian = false;
    format.nanosecond = as_little == kNanosecondMagic;
  } else if (as_big == kMicrosecondMagic || as_big == kNanosecondMagic) {
    format.big_endian = true;
    format.nanosecond = as_big == kNanosecondMagic;
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is not a pcap file: its magic number is 0x%08x, not 0xa1b2c3d4 or 0xa1b23c4d (in "
        "either byte order)",
        path, as_big));
  }
  const auto u16 = format.big_endian ? big16 : little16;
  const auto u32 = format.big_endian ? big32 : little32;
  format.version_major = u16(header + 4);
  format.version_minor = u16(header + 6);
  format.snaplen = u32(header + 16);
  format.link_type = u32(header + 20);
  return format;
}

std::string PcapFollower::describe(const PcapFormat& format) {
  return absl::StrFormat(
      "link type %u, snaplen %u, %s timestamps, %s-endian, version %u.%u", format.link_type,
      format.snaplen, format.nanosecond ? "nanosecond" : "microsecond",
      format.big_endian ? "big" : "little", format.version_major, format.version_minor);
}

absl::Status PcapFollower::watchDirectory() {
  if (!options_.use_inotify) return absl::OkStatus();
  inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify_.valid()) {
    // Out of inotify instances (fs.inotify.max_user_instances): looking every poll_interval
    // still follows, only later.
    warn(absl::StrCat("no inotify (", ::strerror(errno), "): looking at the files every ",
                      options_.poll_interval.count(), " ms instead"));
    return absl::OkStatus();
  }
  if (::inotify_add_watch(inotify_.get(), directory_.c_str(), kWatchedEvents) < 0) {
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR) {
      return absl::NotFoundError(
          absl::StrCat("no directory ", directory_, " for the capture files"));
    }
    warn(absl::StrCat("cannot watch ", directory_, " (", ::strerror(error), "): looking every ",
                      options_.poll_interval.count(), " ms instead"));
    inotify_.reset();
  }
  return absl::OkStatus();
}

void PcapFollower::consumeEvents() {
  if (!inotify_.valid()) return;
  alignas(inotify_event) char buffer[16 * 1024];
  while (true) {
    const ssize_t n = ::read(inotify_.get(), buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: nothing more now
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if ((event->mask & IN_Q_OVERFLOW) != 0) {
        // Events were lost: which file was written last is unknown until the next writes.
        std::fill(last_write_.begin(), last_write_.end(), 0);
        continue;
      }
      if (event->len == 0 || (event->mask & kWriteEvents) == 0) continue;
      const auto file = index_of_name_.find(event->name);
      if (file != index_of_name_.end()) last_write_[file->second] = ++writes_seen_;
    }
  }
}

void PcapFollower::waitForChange() {
  // The output too: a pipe whose reader left reports POLLERR, so that a quiet capture notices
  // Wireshark's exit without a packet to write.
  pollfd watched[2] = {
      {.fd = inotify_.valid() ? inotify_.get() : -1, .events = POLLIN, .revents = 0},
      {.fd = options_.output_fd, .events = 0, .revents = 0}};
  const int ready = ::poll(watched, 2, static_cast<int>(options_.poll_interval.count()));
  if (ready > 0 && (watched[1].revents & (POLLERR | POLLHUP)) != 0) output_closed_ = true;
}

std::optional<int> PcapFollower::newestFile() const {
  const int files = static_cast<int>(options_.files.size());
  std::vector<FileState> states;
  std::optional<timespec> newest;
  for (int i = 0; i < files; ++i) {
    states.push_back(stateOf(pathOf(i)));
    if (states[i].exists && (!newest || newer(states[i].mtime, *newest))) newest = states[i].mtime;
  }
  if (!newest) return std::nullopt;
  const auto isNewest = [&](int i) { return states[i].exists && !newer(*newest, states[i].mtime); };
  // Files written within one tick of the file system's clock have the same mtime: of a run of
  // them, tcpdump wrote the last in rotation order last.
  for (int i = 0; i < files; ++i) {
    if (isNewest(i) && !isNewest(nextIndex(i))) return i;
  }
  for (int i = files - 1; i >= 0; --i) {
    if (isNewest(i)) return i;
  }
  return std::nullopt;
}

absl::Status PcapFollower::begin(int index) {
  consumeEvents();
  CurrentFile file;
  file.index = index;
  file.fd.reset(::open(pathOf(index).c_str(), O_RDONLY | O_CLOEXEC));
  if (!file.fd.valid()) {
    const int error = errno;
    if (error == ENOENT) return absl::NotFoundError(absl::StrCat(pathOf(index), " is gone"));
    return absl::ErrnoToStatus(error, absl::StrCat("cannot open ", pathOf(index)));
  }
  struct stat st;
  if (::fstat(file.fd.get(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot stat ", pathOf(index)));
  }
  file.dev = st.st_dev;
  file.ino = st.st_ino;
  if (options_.files.size() > 1) file.next_at_begin = stateOf(pathOf(nextIndex(index)));
  VLOG(1) << "following " << pathOf(index) << " (inode " << st.st_ino << ", " << st.st_size
          << " bytes)";
  current_ = std::move(file);
  ++files_started_;
  return absl::OkStatus();
}

std::optional<int> PcapFollower::writtenAfter(int index) const {
  const int files = static_cast<int>(options_.files.size());
  for (int step = 1; step < files; ++step) {
    const int other = (index + step) % files;
    if (last_write_[other] > last_write_[index]) return other;
  }
  return std::nullopt;
}

PcapFollower::Rotation PcapFollower::rotation() {
  consumeEvents();
  CurrentFile& file = *current_;
  const FileState at_path = stateOf(pathOf(file.index));
  if (!at_path.exists || at_path.dev != file.dev || at_path.ino != file.ino) {
    return Rotation::kRemoved;
  }
  struct stat st;
  if (::fstat(file.fd.get(), &st) == 0) {
    if (static_cast<uint64_t>(st.st_size) < file.offset) return Rotation::kRewound;
    file.size_seen = std::max(file.size_seen, static_cast<uint64_t>(st.st_size));
  }
  const int files = static_cast<int>(options_.files.size());
  if (files == 1) return Rotation::kNone;
  const FileState next = stateOf(pathOf(nextIndex(file.index)));
  if (file.next_at_begin.exists && !next.exists) return Rotation::kRemoved;
  if (inotify_.valid()) {
    // tcpdump writes one file at a time: another file written after the current one's last
    // write means tcpdump closed the current one. inotify puts the writes of different files in
    // order; their mtimes do not (the file system's clock is coarse, and fine-grained only for
    // files stat()ed since their last change). Nor do stat()s: a write is visible before its
    // event is queued, so that events and stat()s must not be mixed.
    if (writtenAfter(file.index)) return Rotation::kNext;
  } else if (!(next == file.next_at_begin)) {
    // Without inotify: the next file changed (created, truncated, written) since this one began.
    return Rotation::kNext;
  }
  return Rotation::kNone;
}

absl::Status PcapFollower::readHeader(bool final) {
  CurrentFile& file = *current_;
  char header[kGlobalHeaderBytes];
  const ssize_t n = preadUpTo(file.fd.get(), header, sizeof(header), 0);
  if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", pathOf(file.index)));
  if (static_cast<size_t>(n) < kGlobalHeaderBytes) {
    // tcpdump has created the file and not written its header yet.
    if (final) warn(absl::StrCat(pathOf(file.index), " ends before its pcap header: skipped"));
    return absl::OkStatus();
  }
  auto format = parseGlobalHeader(header, pathOf(file.index));
  if (!format.ok()) return format.status();
  if (!first_format_) {
    first_format_ = *format;
    // The stream's only global header.
    if (absl::Status written = writeOut(header, sizeof(header)); !written.ok()) return written;
  } else if (format->big_endian != first_format_->big_endian ||
             format->nanosecond != first_format_->nanosecond ||
             format->version_major != first_format_->version_major ||
             format->version_minor != first_format_->version_minor ||
             format->snaplen != first_format_->snaplen ||
             format->link_type != first_format_->link_type) {
    // Its records could not be read under the header already sent.
    return absl::FailedPreconditionError(
        absl::StrCat(pathOf(file.index), "'s pcap header (", describe(*format),
                     ") differs from the first file's (", describe(*first_format_),
                     "): the capture changed under the stream"));
  }
  file.format = *format;
  file.offset = kGlobalHeaderBytes;
  return absl::OkStatus();
}

absl::Status PcapFollower::pump(bool final) {
  CurrentFile& file = *current_;
  if (!file.format) {
    if (absl::Status header = readHeader(final); !header.ok()) return header;
    if (!file.format || output_closed_) return absl::OkStatus();
  }
  const auto u32 = file.format->big_endian ? big32 : little32;
  const uint32_t max_record = file.format->snaplen > 0
                                  ? std::min(kMaxRecordData, file.format->snaplen + kSnaplenSlack)
                                  : kMaxRecordData;
  read_buffer_.resize(kReadChunkBytes);
  while (true) {
    const ssize_t n = preadUpTo(file.fd.get(), read_buffer_.data(), kReadChunkBytes, file.offset);
    if (n < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", pathOf(file.index)));
    const size_t read = static_cast<size_t>(n);
    file.size_seen = std::max(file.size_seen, file.offset + read);
    size_t whole = 0;  // bytes of whole records from the start of the buffer
    absl::Status corrupt;
    while (read - whole >= kRecordHeaderBytes) {
      const char* record = read_buffer_.data() + whole;
      const uint32_t included = u32(record + 8);
      if (included > max_record) {
        corrupt = absl::DataLossError(absl::StrFormat(
            "%s is corrupt: the record at byte %u claims %u bytes of packet data, more than the "
            "file's snaplen (%u) allows",
            pathOf(file.index), file.offset + whole, included, file.format->snaplen));
        break;
      }
      if (read - whole < kRecordHeaderBytes + included) break;  // its data is not all there yet
      if (absl::Status written = writeOut(record, kRecordHeaderBytes + included); !written.ok()) {
        return written;
      }
      if (output_closed_) return absl::OkStatus();
      whole += kRecordHeaderBytes + included;
      ++packets_;
    }
    file.offset += whole;
    // Whatever arrived goes out now, the records before a corrupt one too: the stream is live.
    if (absl::Status flushed = flush(); !flushed.ok() || output_closed_) return flushed;
    if (!corrupt.ok()) return corrupt;
    if (read < kReadChunkBytes) {
      if (read > whole) {
        if (final) {
          warn(absl::StrFormat("%s ends in an incomplete record (%u bytes at byte %u): skipped",
                               pathOf(file.index), read - whole, file.offset));
        } else {
          ++partial_record_waits_;
        }
      }
      return absl::OkStatus();
    }
  }
}

absl::Status PcapFollower::writeOut(const char* data, size_t size) {
  output_buffer_.append(data, size);
  if (output_buffer_.size() >= kOutputFlushBytes) return flush();
  return absl::OkStatus();
}

absl::Status PcapFollower::flush() {
  size_t done = 0;
  while (done < output_buffer_.size() && !output_closed_) {
    const ssize_t n =
        ::write(options_.output_fd, output_buffer_.data() + done, output_buffer_.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      bytes_ += static_cast<uint64_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // A non-blocking output (as a parent may hand down): wait until it drains.
      pollfd output{.fd = options_.output_fd, .events = POLLOUT, .revents = 0};
      ::poll(&output, 1, static_cast<int>(options_.poll_interval.count()));
    } else if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
      output_closed_ = true;
    } else {
      output_buffer_.clear();
      return n < 0 ? absl::ErrnoToStatus(errno, "cannot write the stream")
                   : absl::InternalError("cannot write the stream: write() wrote nothing");
    }
  }
  output_buffer_.clear();
  return absl::OkStatus();
}

absl::StatusOr<FollowEnd> PcapFollower::followLoop() {
  const int files = static_cast<int>(options_.files.size());
  bool draining = false;  // should_stop said so: write out what is on disk, then end
  int moves_while_draining = 0;
  while (!output_closed_) {
    if (!current_) {
      // Nothing followed yet: the newest file, else wait for tcpdump's first one.
      consumeEvents();
      if (const std::optional<int> newest = newestFile()) {
        absl::Status begun = begin(*newest);
        if (begun.ok() || absl::IsNotFound(begun)) continue;  // NotFound: deleted meanwhile
        return begun;
      }
      if (draining || stopRequested()) return FollowEnd::kStopped;
      waitForChange();
      continue;
    }
    // Whether tcpdump left the current file is decided before reading it, so that the read
    // that follows sees all the file will ever hold.
    const Rotation rotation = this->rotation();
    if (rotation == Rotation::kRewound) {
      // tcpdump reopened the file with O_TRUNC: its rotation when N = 1, its restart after an
      // exit, or, when the other files were written meanwhile, a wrap-around that the stream
      // fell a whole ring behind. The file starts again with a header.
      if (writtenAfter(current_->index) || current_->size_seen > current_->offset) {
        warn(absl::StrCat(pathOf(current_->index),
                          " was rewritten before it was read to its end: the stream fell behind "
                          "tcpdump, and packets were lost"));
      }
      absl::Status begun = begin(current_->index);
      if (absl::IsNotFound(begun)) return FollowEnd::kFilesRemoved;
      if (!begun.ok()) return begun;
      // tcpdump writes this file now, whatever the other files' writes seen before (its own
      // truncation may not be among the events read yet).
      last_write_[current_->index] = ++writes_seen_;
      continue;
    }
    if (absl::Status pumped = pump(rotation != Rotation::kNone); !pumped.ok()) return pumped;
    if (output_closed_) break;
    if (rotation == Rotation::kRemoved) return FollowEnd::kFilesRemoved;
    if (rotation == Rotation::kNext) {
      // Once tcpdump has stopped no file can be newer than every other in turn: at most a ring.
      if (draining && ++moves_while_draining > files) return FollowEnd::kStopped;
      // The next file, unless tcpdump went on elsewhere: the first file written after this one
      // in rotation order (a tcpdump restarted after an exit begins again with the first file).
      absl::Status begun =
          begin(writtenAfter(current_->index).value_or(nextIndex(current_->index)));
      if (absl::IsNotFound(begun)) return FollowEnd::kFilesRemoved;
      if (!begun.ok()) return begun;
      continue;
    }
    if (draining) return FollowEnd::kStopped;
    if (stopRequested()) {
      // One more look: what tcpdump wrote before it stopped, into this file or the next ones.
      draining = true;
      continue;
    }
    waitForChange();
  }
  return FollowEnd::kOutputClosed;
}

absl::StatusOr<FollowEnd> PcapFollower::run() {
  if (options_.files.empty()) return absl::InvalidArgumentError("no capture file to follow");
  if (options_.output_fd < 0) return absl::InvalidArgumentError("no output");
  const std::filesystem::path first(options_.files.front());
  directory_ = first.parent_path().empty() ? "." : first.parent_path().string();
  index_of_name_.clear();
  for (size_t i = 0; i < options_.files.size(); ++i) {
    const std::filesystem::path path(options_.files[i]);
    const std::string directory = path.parent_path().empty() ? "." : path.parent_path().string();
    if (directory != directory_ || path.filename().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the capture's files must share one directory: ", options_.files[i]));
    }
    index_of_name_[path.filename().string()] = static_cast<int>(i);
  }
  last_write_.assign(options_.files.size(), 0);
  writes_seen_ = 0;
  current_.reset();
  first_format_.reset();
  output_closed_ = false;

  const SigpipeBlock sigpipe_blocked;
  if (absl::Status watched = watchDirectory(); !watched.ok()) return watched;
  absl::StatusOr<FollowEnd> end = followLoop();
  // Whatever the end, nothing half-written stays behind in the buffer.
  if (end.ok() && !output_closed_) {
    if (absl::Status flushed = flush(); !flushed.ok()) end = flushed;
  }
  if (output_closed_) end = FollowEnd::kOutputClosed;
  current_.reset();
  inotify_.reset();
  return end;
}

}  // namespace follow

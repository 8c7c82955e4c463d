#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proc/unique_fd.h"

namespace capture {

// The files of one capture, named after the Pod, and the directory that holds them.
//
// tcpdump -w <base> -W N -C size writes <base> followed by a rotation index zero-padded to the
// width of N-1 (tcpdump's MakeFilename): N=3 gives capture-web.pcap0..2, N=11 gives
// capture-web.pcap00..10, and N=1 gives capture-web.pcap with no suffix at all. So a file
// belongs to a capture when its name is exactly the base followed by digits only: the base
// capture-web.pcap never matches capture-web-1.pcap0 (the Pod web-1).
//
// Which base a Pod gets (decided by the reconciler, in this order):
//  - capture-<pod>.pcap, when no other Pod on the node holds it;
//  - capture-<namespace>_<pod>.pcap, when a Pod of the same name in another namespace already
//    holds the plain one (the first capture keeps its name). '_' cannot occur in Kubernetes
//    names, so this cannot be any Pod's plain name;
//  - capture-<prefix of pod>_<16 hex digits>.pcap, when the name would not fit in NAME_MAX
//    (255 bytes) with the widest rotation suffix: Pod names reach 253 characters. The hex digits
//    are a stable hash (FNV-1a 64) of "<namespace>/<pod>", so the name is the same after a
//    restart and differs between namespaces; the prefix is longer than any namespace (63), so
//    it cannot equal a <namespace>_<pod> name either.
// Every name ends in .pcap plus digits, which distribution AppArmor profiles for tcpdump allow.

inline constexpr absl::string_view kCaptureFilePrefix = "capture-";
inline constexpr absl::string_view kCaptureFileSuffix = ".pcap";

// How many digits tcpdump appends for -W files: the digits of files-1 (0 when files is 1).
int rotationSuffixWidth(int files);

std::string plainFileBase(absl::string_view pod_namespace, absl::string_view pod_name,
                          int max_files);
std::string qualifiedFileBase(absl::string_view pod_namespace, absl::string_view pod_name,
                              int max_files);

// The names tcpdump -W files writes for this base, in rotation order.
std::vector<std::string> rotationFileNames(absl::string_view base, int files);

// Exactly `base` followed by nothing but digits.
bool isFileOfCapture(absl::string_view base, absl::string_view file_name);
// Any name a capture could write: capture-<something>.pcap followed by nothing but digits.
bool isCaptureFileName(absl::string_view file_name);

// What a directory entry is, as lstat() tells it (never followed): "a regular file",
// "a directory", "a symbolic link", "a FIFO", "a socket", "a character device", ...
std::string describeFileType(unsigned mode);

// The capture directory, opened for the *at() calls that never follow a link in it.
absl::StatusOr<proc::UniqueFd> openCaptureDirectory(const std::string& dir);
// Deletes `name` of the directory `dir_fd` when it is a regular file: never what a link points
// to, never a directory, FIFO or socket put under a file's name. `path` names it in errors.
struct Unlinked {
  bool deleted = false;    // false with left_alone empty: there was nothing by that name
  std::string left_alone;  // what it is (describeFileType()) when it is no regular file
};
absl::StatusOr<Unlinked> unlinkRegularFile(int dir_fd, const std::string& name,
                                           const std::string& path);

// Whether `path` may be the capture directory (--capture-dir), checked once at start-up: it
// exists, is a directory itself (not a symbolic link to one: give the directory it points to),
// is owned by root and is writable by nobody else (no group or other write bit). Anyone else who
// could write there could plant a symbolic link (or a hard link, a FIFO) under a capture file's
// name before tcpdump opens it, and tcpdump, which runs as root and opens its files with fopen(),
// would write through it. InvalidArgument (NotFound for a missing path) naming the flag, the
// path and what to do.
absl::Status checkCaptureDir(const std::string& path);

// The capture files of one directory. Every per-file operation is relative to a descriptor of
// the directory (opened once per operation) and never follows a symbolic link: only regular files
// are measured or deleted. Anything else named like a capture file (a directory, a symbolic link,
// a FIFO, a socket, a device) is no capture's: it is left alone, with a warning in the log naming
// it and what it is, and is no error (start-up goes on, a capture still stops).
class CaptureFiles {
 public:
  explicit CaptureFiles(std::string dir);

  const std::string& dir() const { return dir_; }
  std::string pathOf(absl::string_view file_name) const;

  // The capture's regular files, by name (not path), sorted: what a Completed capture keeps.
  // Anything else named like them is not the capture's (see removeFilesOf()).
  absl::StatusOr<std::vector<std::string>> filesOf(absl::string_view base) const;
  absl::StatusOr<std::vector<std::string>> allCaptureFiles() const;
  // What the capture's regular files hold, in bytes (a file that vanished meanwhile: 0).
  absl::StatusOr<uint64_t> bytesOf(absl::string_view base) const;

  // Deletes the capture's regular files and returns the names it deleted; what is not a regular
  // file is skipped and logged (a warning), not returned. A file that vanished meanwhile is not
  // an error; any other failure is, after trying every file.
  absl::StatusOr<std::vector<std::string>> removeFilesOf(absl::string_view base) const;
  // Every file isCaptureFileName() matches, but those of the captures in `keep` (file bases).
  absl::StatusOr<std::vector<std::string>> removeAllCaptureFiles(
      const std::set<std::string>& keep = {}) const;

  // Whether tcpdump -W `files` -w <base> may start: every name it will write
  // (rotationFileNames()) is absent or a regular file with a single link. FailedPrecondition
  // naming the path and what it is otherwise: tcpdump opens its files with fopen(path, "w"),
  // which follows a symbolic link and writes into whatever a hard link shares its data with,
  // and blocks forever on a FIFO. Nothing is deleted (a capture that goes on writes its files
  // again).
  absl::Status checkSafeToWrite(absl::string_view base, int files) const;

 private:
  template <typename Match>
  absl::StatusOr<std::vector<std::string>> list(int dir_fd, const Match& match) const;
  absl::StatusOr<std::vector<std::string>> remove(int dir_fd,
                                                  const std::vector<std::string>& names) const;

  std::string dir_;
};

}  // namespace capture

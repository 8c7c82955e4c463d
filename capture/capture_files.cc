#include "capture/capture_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "proc/unique_fd.h"

namespace capture {
namespace {

constexpr size_t kHashHexDigits = 16;

// Stable across processes and versions (unlike absl::Hash), which names that must be found
// again after a restart need.
uint64_t fnv1a64(absl::string_view data) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

bool fits(size_t base_length, int max_files) {
  return base_length + rotationSuffixWidth(max_files) <= NAME_MAX;
}

std::string shortenedFileBase(absl::string_view pod_namespace, absl::string_view pod_name,
                              int max_files) {
  const size_t fixed = kCaptureFilePrefix.size() + 1 + kHashHexDigits + kCaptureFileSuffix.size() +
                       rotationSuffixWidth(max_files);
  const size_t prefix_length = NAME_MAX > fixed ? NAME_MAX - fixed : 0;
  return absl::StrCat(kCaptureFilePrefix, pod_name.substr(0, prefix_length), "_",
                      absl::StrFormat("%016x", fnv1a64(absl::StrCat(pod_namespace, "/", pod_name))),
                      kCaptureFileSuffix);
}

std::string fittingFileBase(std::string candidate, absl::string_view pod_namespace,
                            absl::string_view pod_name, int max_files) {
  if (fits(candidate.size(), max_files)) return candidate;
  return shortenedFileBase(pod_namespace, pod_name, max_files);
}

bool allDigits(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return absl::ascii_isdigit(c); });
}

}  // namespace

absl::StatusOr<proc::UniqueFd> openCaptureDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot list capture directory ", dir));
  return proc::UniqueFd(fd);
}

absl::StatusOr<Unlinked> unlinkRegularFile(int dir_fd, const std::string& name,
                                           const std::string& path) {
  struct stat info {};
  if (::fstatat(dir_fd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return Unlinked{};
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot delete ", path));
  }
  if (!S_ISREG(info.st_mode)) return Unlinked{false, describeFileType(info.st_mode)};
  // unlinkat() never follows a link, and it fails on a directory put in the file's place since
  // the fstatat() (EISDIR): only a name goes, never what a link points to.
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0) {
    if (errno == ENOENT) return Unlinked{};
    if (errno == EISDIR) return Unlinked{false, "a directory now"};
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot delete ", path));
  }
  return Unlinked{true, ""};
}

int rotationSuffixWidth(int files) {
  int width = 0;
  for (int x = files - 1; x > 0; x /= 10) ++width;
  return width;
}

std::string plainFileBase(absl::string_view pod_namespace, absl::string_view pod_name,
                          int max_files) {
  return fittingFileBase(absl::StrCat(kCaptureFilePrefix, pod_name, kCaptureFileSuffix),
                         pod_namespace, pod_name, max_files);
}

std::string qualifiedFileBase(absl::string_view pod_namespace, absl::string_view pod_name,
                              int max_files) {
  return fittingFileBase(
      absl::StrCat(kCaptureFilePrefix, pod_namespace, "_", pod_name, kCaptureFileSuffix),
      pod_namespace, pod_name, max_files);
}

std::vector<std::string> rotationFileNames(absl::string_view base, int files) {
  if (files <= 1) return {std::string(base)};
  const int width = rotationSuffixWidth(files);
  std::vector<std::string> names;
  names.reserve(files);
  for (int i = 0; i < files; ++i) names.push_back(absl::StrFormat("%s%0*d", base, width, i));
  return names;
}

bool isFileOfCapture(absl::string_view base, absl::string_view file_name) {
  return absl::StartsWith(file_name, base) && allDigits(file_name.substr(base.size()));
}

bool isCaptureFileName(absl::string_view file_name) {
  if (!absl::StartsWith(file_name, kCaptureFilePrefix)) return false;
  const size_t digits_at = file_name.find_last_not_of("0123456789") + 1;
  const absl::string_view base = file_name.substr(0, digits_at);
  return base.size() > kCaptureFilePrefix.size() + kCaptureFileSuffix.size() &&
         absl::EndsWith(base, kCaptureFileSuffix);
}

std::string describeFileType(unsigned mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "a regular file";
    case S_IFDIR:
      return "a directory";
    case S_IFLNK:
      return "a symbolic link";
    case S_IFIFO:
      return "a FIFO";
    case S_IFSOCK:
      return "a socket";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    default:
      return absl::StrFormat("a file of type 0%o", mode & S_IFMT);
  }
}

absl::Status checkCaptureDir(const std::string& path) {
  const std::string flag = absl::StrCat("--capture-dir ", path);
  if (path.empty()) return absl::InvalidArgumentError("--capture-dir: empty");
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) return absl::ErrnoToStatus(errno, flag);
  if (S_ISLNK(info.st_mode)) {
    // The link's target is what counts, and whoever can write where the link is could point it
    // elsewhere: the directory itself it must be.
    std::error_code error;
    const std::filesystem::path target = std::filesystem::canonical(path, error);
    if (error) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " is a symbolic link (to nothing usable: ", error.message(),
                       "): give a directory itself"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " is a symbolic link to ", target.string(),
                     ": give the directory itself (--capture-dir=", target.string(), ")"));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " is ", describeFileType(info.st_mode), ", not a directory"));
  }
  if (info.st_uid != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " is owned by uid ", info.st_uid,
        ", not root: its owner could plant a link where tcpdump writes; chown root it"));
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s is writable by group or others (mode 0%o): anyone there could plant a link where "
        "tcpdump writes; chmod go-w it",
        flag, info.st_mode & 07777));
  }
  return absl::OkStatus();
}

CaptureFiles::CaptureFiles(std::string dir) : dir_(std::move(dir)) {}

std::string CaptureFiles::pathOf(absl::string_view file_name) const {
  return absl::EndsWith(dir_, "/") ? absl::StrCat(dir_, file_name)
                                   : absl::StrCat(dir_, "/", file_name);
}

template <typename Match>
absl::StatusOr<std::vector<std::string>> CaptureFiles::list(int dir_fd, const Match& match) const {
  // fdopendir() owns the descriptor it is given: a duplicate, so that dir_fd stays the caller's.
  const int listed_fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
  if (listed_fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot list capture directory ", dir_));
  }
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(listed_fd), &::closedir);
  if (!dir) {
    const int error = errno;
    ::close(listed_fd);
    return absl::ErrnoToStatus(error, absl::StrCat("cannot list capture directory ", dir_));
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir.get())) {
    if (match(absl::string_view(entry->d_name))) names.emplace_back(entry->d_name);
  }
  if (errno != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot list capture directory ", dir_));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::filesOf(absl::string_view base) const {
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  const int dir_fd = dir->get();
  return list(dir_fd, [base, dir_fd](absl::string_view name) {
    if (!isFileOfCapture(base, name)) return false;
    struct stat file {};
    return ::fstatat(dir_fd, std::string(name).c_str(), &file, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(file.st_mode);
  });
}

absl::StatusOr<uint64_t> CaptureFiles::bytesOf(absl::string_view base) const {
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  auto names =
      list(dir->get(), [base](absl::string_view name) { return isFileOfCapture(base, name); });
  if (!names.ok()) return names.status();
  uint64_t bytes = 0;
  for (const std::string& name : *names) {
    struct stat file {};
    // Not followed: a link named like a capture file is not the capture's.
    if (::fstatat(dir->get(), name.c_str(), &file, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(file.st_mode)) {
      bytes += file.st_size;
    }
  }
  return bytes;
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::allCaptureFiles() const {
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  return list(dir->get(), [](absl::string_view name) { return isCaptureFileName(name); });
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::remove(
    int dir_fd, const std::vector<std::string>& names) const {
  std::vector<std::string> removed;
  absl::Status failure;
  for (const std::string& name : names) {
    const std::string path = pathOf(name);
    auto unlinked = unlinkRegularFile(dir_fd, name, path);
    if (!unlinked.ok()) {
      if (failure.ok()) failure = unlinked.status();
    } else if (unlinked->deleted) {
      removed.push_back(name);
    } else if (!unlinked->left_alone.empty()) {
      LOG(WARNING) << "not deleting " << path << ": it is " << unlinked->left_alone
                   << ", not a file tcpdump wrote (remove it by hand)";
    }
  }
  if (!failure.ok()) return failure;
  return removed;
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::removeFilesOf(absl::string_view base) const {
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  auto names =
      list(dir->get(), [base](absl::string_view name) { return isFileOfCapture(base, name); });
  if (!names.ok()) return names.status();
  return remove(dir->get(), *names);
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::removeAllCaptureFiles(
    const std::set<std::string>& keep) const {
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  auto names = list(dir->get(), [&keep](absl::string_view name) {
    if (!isCaptureFileName(name)) return false;
    return std::none_of(keep.begin(), keep.end(),
                        [name](const std::string& base) { return isFileOfCapture(base, name); });
  });
  if (!names.ok()) return names.status();
  return remove(dir->get(), *names);
}

absl::Status CaptureFiles::checkSafeToWrite(absl::string_view base, int files) const {
  // Checked, then opened by tcpdump in another process: a time-of-check to time-of-use gap this
  // cannot close (tcpdump's fopen() takes no O_NOFOLLOW). What closes it is the directory itself:
  // checkCaptureDir() makes sure only root can write there, so only root could plant anything
  // between this check and tcpdump's open. This check catches what is already there: a link left
  // by an earlier, looser configuration, or put there by hand, which tcpdump would follow.
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  for (const std::string& name : rotationFileNames(base, files)) {
    struct stat info {};
    if (::fstatat(dir->get(), name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // tcpdump creates it
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot check ", pathOf(name)));
    }
    if (S_ISLNK(info.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(pathOf(name),
                       " is a symbolic link: refusing to let tcpdump write through "
                       "it; remove it"));
    }
    if (!S_ISREG(info.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(pathOf(name), " is ", describeFileType(info.st_mode),
                       ", not a regular file: refusing to let tcpdump write to it; remove it"));
    }
    if (info.st_nlink > 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          pathOf(name), " is a regular file with ", info.st_nlink,
          " links: refusing to let tcpdump write into a file that has another name; remove it"));
    }
  }
  return absl::OkStatus();
}

}  // namespace capture

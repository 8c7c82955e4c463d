#include "capture/capture_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

CaptureFiles::CaptureFiles(std::string dir) : dir_(std::move(dir)) {}

std::string CaptureFiles::pathOf(absl::string_view file_name) const {
  return absl::EndsWith(dir_, "/") ? absl::StrCat(dir_, file_name)
                                   : absl::StrCat(dir_, "/", file_name);
}

template <typename Match>
absl::StatusOr<std::vector<std::string>> CaptureFiles::list(const Match& match) const {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_.c_str()), &::closedir);
  if (!dir) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot list capture directory ", dir_));
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
  return list([base](absl::string_view name) { return isFileOfCapture(base, name); });
}

absl::StatusOr<uint64_t> CaptureFiles::bytesOf(absl::string_view base) const {
  auto names = filesOf(base);
  if (!names.ok()) return names.status();
  uint64_t bytes = 0;
  for (const std::string& name : *names) {
    struct stat file;
    // Not followed: a link named like a capture file is not the capture's.
    if (::lstat(pathOf(name).c_str(), &file) == 0 && S_ISREG(file.st_mode)) bytes += file.st_size;
  }
  return bytes;
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::allCaptureFiles() const {
  return list([](absl::string_view name) { return isCaptureFileName(name); });
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::remove(
    const std::vector<std::string>& names) const {
  std::vector<std::string> removed;
  absl::Status failure;
  for (const std::string& name : names) {
    const std::string path = pathOf(name);
    if (::unlink(path.c_str()) == 0) {
      removed.push_back(name);
    } else if (errno != ENOENT && failure.ok()) {
      failure = absl::ErrnoToStatus(errno, absl::StrCat("cannot delete ", path));
    }
  }
  if (!failure.ok()) return failure;
  return removed;
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::removeFilesOf(absl::string_view base) const {
  auto names = filesOf(base);
  if (!names.ok()) return names.status();
  return remove(*names);
}

absl::StatusOr<std::vector<std::string>> CaptureFiles::removeAllCaptureFiles(
    const std::set<std::string>& keep) const {
  auto names = list([&keep](absl::string_view name) {
    if (!isCaptureFileName(name)) return false;
    return std::none_of(keep.begin(), keep.end(),
                        [name](const std::string& base) { return isFileOfCapture(base, name); });
  });
  if (!names.ok()) return names.status();
  return remove(*names);
}

}  // namespace capture

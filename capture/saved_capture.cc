#include "capture/saved_capture.h"

#include <dirent.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "capture/capture_files.h"
#include "proc/unique_fd.h"

namespace capture {
namespace {

constexpr absl::string_view kStateSuffix = ".state";
constexpr int kVersion = 1;
constexpr size_t kMaxBytes = 64 * 1024;

// The capture's file base in a name isSavedCaptureFileName() took: ".<base>.state".
std::string fileBaseOf(absl::string_view file_name) {
  absl::ConsumePrefix(&file_name, ".");
  absl::ConsumeSuffix(&file_name, kStateSuffix);
  return std::string(file_name);
}

absl::Status invalid(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("not a saved capture: ", what));
}

// Writes all of `text` to `fd`, through short writes and signals.
bool writeAll(int fd, absl::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::string savedCaptureFileName(absl::string_view file_base) {
  return absl::StrCat(".", file_base, kStateSuffix);
}

bool isSavedCaptureFileName(absl::string_view file_name) {
  if (!absl::ConsumePrefix(&file_name, ".") || !absl::ConsumeSuffix(&file_name, kStateSuffix)) {
    return false;
  }
  return isCaptureFileName(file_name);
}

std::string toText(const SavedCapture& saved) {
  const nlohmann::json json = {
      {"version", kVersion},
      {"podUid", saved.pod_uid},
      {"podNamespace", saved.pod_namespace},
      {"podName", saved.pod_name},
      {"fileBase", saved.file_base},
      {"files", saved.spec.files},
      {"filter", saved.spec.filter},
      {"durationSeconds",
       saved.spec.duration ? nlohmann::json(saved.spec.duration->count()) : nullptr},
      {"packetLimit", saved.spec.packets ? nlohmann::json(*saved.spec.packets) : nullptr},
      {"sandboxId", saved.sandbox_id},
      {"netnsPath", saved.netns_path},
      {"beganUnixMillis",
       std::chrono::duration_cast<std::chrono::milliseconds>(saved.began.time_since_epoch())
           .count()},
      {"completed", saved.completed},
      {"completedReason", saved.completed_reason},
      {"packetsCaptured", saved.packets_captured},
      {"counts", toJson(saved.counts)},
  };
  return json.dump() + "\n";
}

absl::StatusOr<SavedCapture> parseSavedCapture(absl::string_view text) {
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return invalid("not a JSON object");
  try {
    if (json.at("version").get<int>() != kVersion) {
      return invalid(absl::StrCat("version ", json.at("version").dump(), ", not ", kVersion));
    }
    SavedCapture saved;
    saved.pod_uid = json.at("podUid").get<std::string>();
    saved.pod_namespace = json.at("podNamespace").get<std::string>();
    saved.pod_name = json.at("podName").get<std::string>();
    saved.file_base = json.at("fileBase").get<std::string>();
    saved.spec.files = json.at("files").get<int>();
    saved.spec.filter = json.at("filter").get<std::string>();
    if (const nlohmann::json& d = json.at("durationSeconds"); !d.is_null()) {
      saved.spec.duration = std::chrono::seconds(d.get<int64_t>());
    }
    if (const nlohmann::json& p = json.at("packetLimit"); !p.is_null()) {
      saved.spec.packets = p.get<uint64_t>();
    }
    saved.sandbox_id = json.at("sandboxId").get<std::string>();
    saved.netns_path = json.at("netnsPath").get<std::string>();
    saved.began = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(json.at("beganUnixMillis").get<int64_t>()));
    saved.completed = json.at("completed").get<bool>();
    saved.completed_reason = json.at("completedReason").get<std::string>();
    saved.packets_captured = json.at("packetsCaptured").get<uint64_t>();
    if (const nlohmann::json& c = json.at("counts"); !c.is_null()) {
      saved.counts = TcpdumpCounts{
          .captured = c.at("captured").get<uint64_t>(),
          .received_by_filter = c.at("receivedByFilter").get<uint64_t>(),
          .dropped_by_kernel = c.at("droppedByKernel").get<uint64_t>(),
          .dropped_by_interface = c.at("droppedByInterface").get<uint64_t>(),
      };
    }
    // Only what a capture of this controller could have written.
    if (saved.pod_uid.empty() || saved.pod_namespace.empty() || saved.pod_name.empty()) {
      return invalid("no Pod");
    }
    if (saved.file_base.find('/') != std::string::npos || !isCaptureFileName(saved.file_base)) {
      return invalid(absl::StrCat("file base ", saved.file_base, " is no capture's"));
    }
    if (saved.spec.files < 1) return invalid("files below 1");
    if (saved.spec.duration && (*saved.spec.duration < std::chrono::seconds(1) ||
                                *saved.spec.duration > kMaxCaptureDuration)) {
      return invalid("duration out of range");
    }
    if (saved.spec.packets &&
        (*saved.spec.packets < 1 || *saved.spec.packets > kMaxCapturePackets)) {
      return invalid("packet limit out of range");
    }
    return saved;
  } catch (const nlohmann::json::exception& e) {
    return invalid(e.what());
  }
}

SavedCaptures::SavedCaptures(std::string dir) : dir_(std::move(dir)) {}

std::string SavedCaptures::pathOf(absl::string_view file_name) const {
  return CaptureFiles(dir_).pathOf(file_name);
}

absl::Status SavedCaptures::save(const SavedCapture& saved) const {
  const std::string name = savedCaptureFileName(saved.file_base);
  const std::string temporary_name = name + ".tmp";
  const std::string path = pathOf(name);
  const std::string temporary = pathOf(temporary_name);
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  // A temporary file left by a crash goes; anything else under its name stays, and no save is
  // written through it (O_EXCL|O_NOFOLLOW: a new file, never a link's target nor a hard link's).
  auto cleared = unlinkRegularFile(dir->get(), temporary_name, temporary);
  if (!cleared.ok()) return cleared.status();
  if (!cleared->left_alone.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", temporary, ": it is ",
                                                      cleared->left_alone,
                                                      ", not a file of ours; remove it"));
  }
  // No fsync: the rename makes it whole against the controller's own crash, which is what it is
  // for; a node that loses power loses its Pods' sandboxes, and so the captures, anyway.
  const int fd = ::openat(dir->get(), temporary_name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", temporary));
  const bool written = writeAll(fd, toText(saved));
  const int write_errno = errno;
  ::close(fd);
  if (!written) {
    ::unlinkat(dir->get(), temporary_name.c_str(), 0);
    return absl::ErrnoToStatus(write_errno, absl::StrCat("cannot write ", temporary));
  }
  // A link under the saved capture's own name is replaced, not followed.
  if (::renameat(dir->get(), temporary_name.c_str(), dir->get(), name.c_str()) != 0) {
    const absl::Status status = absl::ErrnoToStatus(errno, absl::StrCat("cannot rename to ", path));
    ::unlinkat(dir->get(), temporary_name.c_str(), 0);
    return status;
  }
  return absl::OkStatus();
}

absl::Status SavedCaptures::remove(absl::string_view file_base) const {
  auto dir = openCaptureDirectory(dir_);
  if (!dir.ok()) return dir.status();
  const std::string name = savedCaptureFileName(file_base);
  absl::Status failure;
  // The temporary file is one left by a crash between its write and its rename.
  for (const std::string& each : {name + ".tmp", name}) {
    const std::string path = pathOf(each);
    auto removed = unlinkRegularFile(dir->get(), each, path);
    if (!removed.ok()) {
      if (failure.ok()) failure = removed.status();
    } else if (!removed->left_alone.empty()) {
      LOG(WARNING) << "not deleting " << path << ": it is " << removed->left_alone
                   << ", not a file this controller wrote (remove it by hand)";
    }
  }
  return failure;
}

absl::StatusOr<std::vector<SavedCaptures::Loaded>> SavedCaptures::loadAll() const {
  auto dir_fd = openCaptureDirectory(dir_);
  if (!dir_fd.ok()) return dir_fd.status();
  // fdopendir() owns the descriptor it is given: a duplicate, so that the other stays ours.
  const int listed_fd = ::fcntl(dir_fd->get(), F_DUPFD_CLOEXEC, 0);
  if (listed_fd < 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot list ", dir_));
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(listed_fd), &::closedir);
  if (!dir) {
    const int error = errno;
    ::close(listed_fd);
    return absl::ErrnoToStatus(error, absl::StrCat("cannot list ", dir_));
  }
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = ::readdir(dir.get())) {
    if (isSavedCaptureFileName(entry->d_name)) names.emplace_back(entry->d_name);
  }
  if (errno != 0) return absl::ErrnoToStatus(errno, absl::StrCat("cannot list ", dir_));
  std::sort(names.begin(), names.end());

  std::vector<Loaded> loaded;
  for (const std::string& name : names) {
    const std::string path = pathOf(name);
    // O_NONBLOCK: a FIFO planted under the name must not hang the start-up.
    const int fd =
        ::openat(dir_fd->get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      loaded.push_back(
          {name, fileBaseOf(name), absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path))});
      continue;
    }
    const proc::UniqueFd owned(fd);
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      loaded.push_back(
          {name, fileBaseOf(name), invalid(absl::StrCat(path, " is not a regular file"))});
      continue;
    }
    std::string text(std::min<size_t>(static_cast<size_t>(info.st_size), kMaxBytes), '\0');
    size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    text.resize(got);
    absl::StatusOr<SavedCapture> parsed = parseSavedCapture(text);
    if (!parsed.ok()) {
      parsed = absl::InvalidArgumentError(absl::StrCat(path, ": ", parsed.status().message()));
    }
    loaded.push_back({name, fileBaseOf(name), std::move(parsed)});
  }
  return loaded;
}

}  // namespace capture

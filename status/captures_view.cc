#include "status/captures_view.h"

#include <glog/logging.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/short_id.h"
#include "capture/capture_files.h"

namespace status {

nlohmann::json capturesJson(const std::vector<capture::CaptureStatus>& captures) {
  // One listing per directory (every capture shares --capture-dir), then one stat per file.
  std::map<std::string, std::vector<std::string>> names_by_dir;
  nlohmann::json list = nlohmann::json::array();
  for (const capture::CaptureStatus& status : captures) {
    const std::filesystem::path path(status.file_path);
    const std::string dir = path.parent_path().string();
    auto listed = names_by_dir.find(dir);
    if (listed == names_by_dir.end()) {
      auto names = capture::CaptureFiles(dir).allCaptureFiles();
      if (!names.ok()) LOG(WARNING) << "/captures: " << names.status();
      listed =
          names_by_dir.emplace(dir, names.ok() ? *std::move(names) : std::vector<std::string>{})
              .first;
    }
    // In the order tcpdump wrote them, oldest first: by the time of each file's last write
    // (tcpdump finishes one file before it opens the next), then by the index in the ring.
    struct OnDisk {
      timespec modified;
      size_t index;
      std::string path;
      uint64_t bytes;
    };
    std::vector<OnDisk> on_disk;
    const std::vector<std::string> ring =
        capture::rotationFileNames(path.filename().string(), status.files);
    for (const std::string& name : listed->second) {
      if (!capture::isFileOfCapture(path.filename().string(), name)) continue;
      const std::string file = (path.parent_path() / name).string();
      struct stat info {};
      // Not followed, and only regular files: a link or a directory named like a capture file is
      // no capture's (capture/capture_files.h), and its target's size is none of its bytes.
      if (::lstat(file.c_str(), &info) != 0) continue;  // rotated away since the listing
      if (!S_ISREG(info.st_mode)) continue;
      const size_t index = std::find(ring.begin(), ring.end(), name) - ring.begin();
      on_disk.push_back({info.st_mtim, index, file, static_cast<uint64_t>(info.st_size)});
    }
    std::sort(on_disk.begin(), on_disk.end(), [](const OnDisk& a, const OnDisk& b) {
      return std::tie(a.modified.tv_sec, a.modified.tv_nsec, a.index) <
             std::tie(b.modified.tv_sec, b.modified.tv_nsec, b.index);
    });
    nlohmann::json files = nlohmann::json::array();
    uint64_t bytes = 0;
    for (const OnDisk& file : on_disk) {
      files.push_back({{"path", file.path}, {"bytes", file.bytes}});
      bytes += file.bytes;
    }
    nlohmann::json entry = capture::toJson(status);
    entry["filesOnDisk"] = std::move(files);
    entry["bytesOnDisk"] = bytes;  // as of now, not of the last resync
    list.push_back(std::move(entry));
  }
  return {{"captures", std::move(list)}};
}

namespace {

std::string humanBytes(uint64_t bytes) {
  // tcpdump's -C counts in 10^6 bytes, so do the sizes here.
  if (bytes < 1000) return absl::StrCat(bytes, " B");
  if (bytes < 1000 * 1000) return absl::StrFormat("%.1f kB", bytes / 1e3);
  return absl::StrFormat("%.1f MB", bytes / 1e6);
}

std::string orDash(std::string s) { return s.empty() ? "-" : s; }

}  // namespace

absl::StatusOr<std::string> capturesTable(const nlohmann::json& document) {
  try {
    const std::vector<std::string> header = {"POD",      "STATE",   "SANDBOX", "NETNS", "PID",
                                             "RESTARTS", "PACKETS", "DROPPED", "FILES"};
    std::vector<std::vector<std::string>> rows = {header};
    std::vector<std::string> errors;
    for (const nlohmann::json& c : document.at("captures")) {
      const std::string pod =
          c.at("podNamespace").get<std::string>() + "/" + c.at("podName").get<std::string>();
      std::string files;
      for (const nlohmann::json& f : c.at("filesOnDisk")) {
        const std::string path = f.at("path").get<std::string>();
        absl::StrAppend(&files, files.empty() ? "" : ", ",
                        std::filesystem::path(path).filename().string(), " (",
                        humanBytes(f.at("bytes").get<uint64_t>()), ")");
      }
      const int64_t pid = c.at("pid").get<int64_t>();
      // Captured, and dropped by the kernel (and by the interface, when it dropped any).
      std::string packets = "-";
      std::string dropped = "-";
      // Absent from a controller older than its counts.
      if (const nlohmann::json counts = c.value("counts", nlohmann::json()); !counts.is_null()) {
        packets = std::to_string(counts.at("captured").get<uint64_t>());
        dropped = std::to_string(counts.at("droppedByKernel").get<uint64_t>());
        if (const uint64_t by_interface = counts.at("droppedByInterface").get<uint64_t>()) {
          absl::StrAppend(&dropped, "+", by_interface);
        }
      }
      rows.push_back(
          {pod, c.at("state").get<std::string>(),
           orDash(base::shortId(c.at("sandboxId").get<std::string>())),
           orDash(c.at("netnsPath").get<std::string>()), pid > 0 ? std::to_string(pid) : "-",
           std::to_string(c.at("restarts").get<uint64_t>()), packets, dropped, orDash(files)});
      const std::string error = c.at("lastError").get<std::string>();
      if (!error.empty()) errors.push_back(pod + ": last error: " + error);
    }
    if (rows.size() == 1) return std::string("no capture is active on this node\n");
    std::vector<size_t> widths(header.size(), 0);
    for (const auto& row : rows) {
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    std::string table;
    for (const auto& row : rows) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
      }
      absl::StrAppend(&table, line, "\n");
    }
    for (const std::string& error : errors) absl::StrAppend(&table, error, "\n");
    return table;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not a /captures document: ", e.what()));
  }
}

}  // namespace status

// capture-controller follow NAMESPACE/POD: the running capture of a Pod as one live pcap stream
// on stdout, read from the files tcpdump rotates through (no second tcpdump), for
// `kubectl exec -i <controller pod> -- capture-controller follow default/web | wireshark -k -i -`.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "capture/capture_files.h"
#include "cmd/capture-controller/commands.h"
#include "cmd/capture-controller/controller_client.h"
#include "cmd/capture-controller/flags.h"
#include "follow/pcap_follower.h"

namespace cmd {
namespace {

// How often /captures is asked again while following: a stop or a restart ends the stream
// within this time. One small GET on the loopback.
constexpr std::chrono::seconds kWatchPeriod{2};
constexpr std::chrono::seconds kWatchReadTimeout{5};
constexpr char kCompleted[] = "Completed";  // tcpdump is done: its files are all there will be
constexpr char kStopping[] = "Stopping";

struct PodReference {
  std::string pod_namespace;
  std::string name;
  std::string text() const { return absl::StrCat(pod_namespace, "/", name); }
};

// A DNS-1123 label without its length limit: lower-case letters, digits and '-', starting and
// ending with a letter or digit.
bool isLabel(std::string_view s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') return false;
  }
  return true;
}

// Namespaces are DNS-1123 labels (63 characters at most), Pod names DNS-1123 subdomains (labels
// joined by dots, 253 characters at most), as the API server validates them.
absl::StatusOr<PodReference> parsePodReference(const std::string& argument) {
  const std::vector<std::string> parts = absl::StrSplit(argument, '/');
  if (parts.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("not NAMESPACE/POD: ", argument, " (e.g. default/web)"));
  }
  PodReference pod{parts[0], parts[1]};
  if (pod.pod_namespace.size() > 63 || !isLabel(pod.pod_namespace)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a namespace: \"", pod.pod_namespace,
        "\" (a namespace is at most 63 lower-case letters, digits and '-', starting and ending "
        "with a letter or digit)"));
  }
  const std::vector<std::string> labels = absl::StrSplit(pod.name, '.');
  if (pod.name.size() > 253 ||
      !std::all_of(labels.begin(), labels.end(), [](const std::string& l) { return isLabel(l); })) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a Pod name: \"", pod.name,
        "\" (a Pod name is at most 253 lower-case letters, digits, '-' and '.', starting and "
        "ending with a letter or digit)"));
  }
  return pod;
}

// What follow needs of one entry of /captures (capture::toJson, status::capturesJson).
struct CaptureEntry {
  std::string state;
  std::string file_path;  // the base: tcpdump appends the rotation index
  int files = 0;
};

// The entries of /captures for this Pod; several while a recreated Pod's old capture stops.
absl::StatusOr<std::vector<CaptureEntry>> capturesOfPod(const std::string& body,
                                                        const PodReference& pod) {
  const auto document = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (document.is_discarded()) return absl::InvalidArgumentError("/captures: not JSON");
  try {
    std::vector<CaptureEntry> entries;
    for (const nlohmann::json& capture : document.at("captures")) {
      if (capture.at("podNamespace").get<std::string>() != pod.pod_namespace ||
          capture.at("podName").get<std::string>() != pod.name) {
        continue;
      }
      CaptureEntry entry{capture.at("state").get<std::string>(),
                         capture.at("filePath").get<std::string>(), capture.at("files").get<int>()};
      if (entry.file_path.empty() || entry.files < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("/captures: the capture of ", pod.text(), " has no files (filePath \"",
                         entry.file_path, "\", files ", entry.files, ")"));
      }
      entries.push_back(std::move(entry));
    }
    return entries;
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("/captures: not its document: ", e.what()));
  }
}

// The one to follow: one that is not on its way out, if there is one.
std::optional<CaptureEntry> chooseCapture(const std::vector<CaptureEntry>& entries) {
  for (const CaptureEntry& entry : entries) {
    if (entry.state != kStopping) return entry;
  }
  if (!entries.empty()) return entries.front();
  return std::nullopt;
}

// Asks /captures every kWatchPeriod, on a thread of its own so that the stream never waits on
// HTTP, whether the capture followed is still the same one running: gone (stopped), another
// file base or N (restarted) or Completed (tcpdump is done) ends it.
class CaptureWatch {
 public:
  CaptureWatch(const ControllerClient& controller, PodReference pod, CaptureEntry followed)
      : controller_(controller), pod_(std::move(pod)), followed_(std::move(followed)) {
    if (followed_.state == kCompleted) {
      end(absl::StrCat("the capture of ", pod_.text(), " has completed"));
    }
  }
  ~CaptureWatch() { stop(); }

  void start() {
    thread_ = std::thread([this] { loop(); });
  }
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Whether the stream should end, once what is on disk is written out.
  bool ended() const { return ended_.load(); }
  std::string why() const {
    std::lock_guard lock(mutex_);
    return why_;
  }

 private:
  void end(std::string why) {
    std::lock_guard lock(mutex_);
    why_ = std::move(why);
    ended_ = true;
  }

  void loop() {
    std::unique_lock lock(mutex_);
    while (!ended_ && !wake_.wait_for(lock, kWatchPeriod, [this] { return stopping_; })) {
      lock.unlock();
      check();
      lock.lock();
    }
  }

  void check() {
    auto body = controller_.getCaptures(kWatchReadTimeout);
    absl::StatusOr<std::vector<CaptureEntry>> entries =
        body.ok() ? capturesOfPod(*body, pod_) : body.status();
    if (!entries.ok()) {
      // The files still tell: a controller that restarts deletes them, which ends the stream.
      if (!unanswered_noted_) {
        std::cerr << "follow: " << entries.status().message()
                  << " (still following the files until they go)\n";
        unanswered_noted_ = true;
      }
      return;
    }
    unanswered_noted_ = false;
    const CaptureEntry* same = nullptr;
    for (const CaptureEntry& entry : *entries) {
      if (entry.file_path == followed_.file_path && entry.files == followed_.files) same = &entry;
    }
    if (same != nullptr) {
      if (same->state == kCompleted) {
        end(absl::StrCat("the capture of ", pod_.text(), " has completed"));
      }
    } else if (std::optional<CaptureEntry> other = chooseCapture(*entries)) {
      end(absl::StrCat("the capture of ", pod_.text(), " was restarted (now ", other->files,
                       " files at ", other->file_path, "): run follow again for the new one"));
    } else {
      end(absl::StrCat("the capture of ", pod_.text(), " was stopped"));
    }
  }

  const ControllerClient& controller_;
  const PodReference pod_;
  const CaptureEntry followed_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> ended_{false};
  std::string why_;
  bool unanswered_noted_ = false;  // only the watch thread touches it
};

}  // namespace

int followCommand(const std::vector<std::string>& arguments) {
  constexpr char kUsage[] =
      "usage: capture-controller follow NAMESPACE/POD [--http-address ADDR] | wireshark -k -i -";
  if (arguments.size() != 1) {
    std::cerr << "follow: give exactly one NAMESPACE/POD, got " << arguments.size()
              << " arguments\n"
              << kUsage << "\n";
    return 2;
  }
  auto pod = parsePodReference(arguments[0]);
  if (!pod.ok()) {
    std::cerr << "follow: " << pod.status().message() << "\n" << kUsage << "\n";
    return 2;
  }
  auto controller = ControllerClient::fromHttpAddress(FLAGS_http_address);
  if (!controller.ok()) {
    std::cerr << "follow: " << controller.status().message() << "\n";
    return 2;
  }
  if (::isatty(STDOUT_FILENO) == 1) {
    std::cerr << "follow: stdout is a terminal, and the stream is binary pcap: pipe it into "
                 "Wireshark or tcpdump (kubectl exec -i, without -t)\n"
              << kUsage << "\n";
    return 2;
  }

  auto body = controller->getCaptures();
  absl::StatusOr<std::vector<CaptureEntry>> entries =
      body.ok() ? capturesOfPod(*body, *pod) : body.status();
  if (!entries.ok()) {
    std::cerr << "follow: " << entries.status().message() << "\n";
    return 1;
  }
  const std::optional<CaptureEntry> capture = chooseCapture(*entries);
  if (!capture) {
    std::cerr << "follow: no capture of " << pod->text()
              << " on this node (is it annotated tcpdump.antrea.io?)\n";
    return 1;
  }

  CaptureWatch watch(*controller, *pod, *capture);
  watch.start();
  follow::PcapFollower follower(follow::FollowOptions{
      .files = capture::rotationFileNames(capture->file_path, capture->files),
      .output_fd = STDOUT_FILENO,
      .should_stop = [&watch] { return watch.ended(); },
      .poll_interval = std::chrono::milliseconds(200),
      .use_inotify = true,
      .warn = [](const std::string& message) { std::cerr << "follow: " << message << "\n"; },
  });
  const absl::StatusOr<follow::FollowEnd> end = follower.run();
  watch.stop();
  if (!end.ok()) {
    std::cerr << "follow: " << end.status().message() << "\n";
    return 1;
  }
  const std::string written = absl::StrCat("; ", follower.stats().packets, " packets written");
  switch (*end) {
    case follow::FollowEnd::kOutputClosed:
      return 0;  // the reader quit: nothing to say
    case follow::FollowEnd::kStopped:
      std::cerr << "follow: " << watch.why() << written << "\n";
      return 0;
    case follow::FollowEnd::kFilesRemoved:
      std::cerr << "follow: "
                << (watch.ended() ? watch.why()
                                  : absl::StrCat("the files of the capture of ", pod->text(),
                                                 " were deleted (it was stopped or restarted)"))
                << written << "\n";
      return 0;
  }
  return 0;
}

}  // namespace cmd

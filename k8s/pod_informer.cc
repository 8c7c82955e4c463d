#include "k8s/pod_informer.h"

#include <glog/logging.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "base/backoff.h"
#include "base/thread_step.h"
#include "k8s/watch_stream_parser.h"

namespace k8s {
namespace {

// How long past the watch's own timeoutSeconds the client waits before it calls the
// connection dead: a server that vanished without a FIN sends no end of stream.
constexpr std::chrono::seconds kWatchTimeoutSlack{30};

// A watch that ends sooner than this without a single event did not end by its timeout.
constexpr std::chrono::seconds kShortestHealthyWatch{1};

std::chrono::seconds jitteredWatchTimeout(std::chrono::seconds min) {
  static thread_local std::mt19937 random(std::random_device{}());
  std::uniform_real_distribution<double> factor(1.0, 2.0);
  return std::chrono::seconds(static_cast<long>(static_cast<double>(min.count()) * factor(random)));
}

}  // namespace

PodInformer::PodInformer(const ClusterConfig& config, PodInformerOptions options,
                         PodEventHandler* handler)
    : options_(std::move(options)), handler_(handler), http_(config, options_.http) {
  CHECK(!options_.node_name.empty()) << "PodInformer needs a node name";
}

PodInformer::~PodInformer() { stop(); }

void PodInformer::start() {
  CHECK(!watcher_.joinable()) << "PodInformer started twice";
  dispatcher_ = std::thread([this] { runDispatcher(); });
  watcher_ = std::thread([this] { runWatcher(); });
}

void PodInformer::stop() {
  queue_.close();
  cancel_.cancel();  // aborts a list or watch in flight, at once
  if (watcher_.joinable()) watcher_.join();
  if (dispatcher_.joinable()) dispatcher_.join();
}

bool PodInformer::waitForSync(std::chrono::steady_clock::duration timeout) const {
  std::unique_lock lock(sync_mutex_);
  return sync_changed_.wait_for(lock, timeout, [this] { return synced_.load(); });
}

PodInformerStats PodInformer::stats() const {
  PodInformerStats stats;
  stats.lists = lists_.load();
  stats.relists = stats.lists > 0 ? stats.lists - 1 : 0;
  stats.watch_reconnects = watch_reconnects_.load();
  stats.events_received = events_received_.load();
  stats.changes_delivered = changes_delivered_.load();
  stats.changes_collapsed = queue_.collapsed();
  stats.queued_changes = queue_.queued();
  stats.queue_high_water = queue_.highWater();
  if (const int64_t ns = last_sync_ns_.load(); ns != 0) {
    stats.last_sync = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(ns)));
  }
  return stats;
}

std::string PodInformer::selector() const {
  return "fieldSelector=" + urlEncode("spec.nodeName=" + options_.node_name);
}

void PodInformer::pause(std::chrono::milliseconds delay) { queue_.waitClosed(delay); }

void PodInformer::runWatcher() {
  WatcherState state{base::Backoff(options_.initial_backoff, options_.max_backoff)};
  while (!cancel_.cancelled()) {
    if (!base::runThreadStep("Pod watcher", [&] { listOrWatch(state); })) {
      // Where it stopped is unknown: start over from a list.
      state.need_list = true;
      pause(state.backoff.next());
    }
  }
}

void PodInformer::listOrWatch(WatcherState& state) {
  if (state.need_list) {
    // As client-go's reflector: the first list may come from the watch cache (resourceVersion
    // 0), so that a DaemonSet rolling out does not make every node read every Pod of the
    // cluster from etcd. A relist follows a 410 or a stream we stopped trusting, where the
    // cache may be behind what we saw: it is a consistent read (resourceVersion unset).
    auto listed = listAll(lists_.load() == 0 ? "0" : "");
    if (!listed.ok()) {
      if (cancel_.cancelled()) return;
      const auto delay = state.backoff.next();
      LOG(WARNING) << "listing the Pods of node " << options_.node_name
                   << " failed: " << listed.status() << "; retrying in " << delay.count() << "ms";
      pause(delay);
      return;
    }
    VLOG(1) << "listed " << listed->pods.size() << " Pods at resourceVersion "
            << listed->resource_version;
    state.resource_version = std::move(listed->resource_version);
    lists_++;
    queue_.replace(std::move(listed->pods));
    state.need_list = false;
  }
  if (!state.first_watch) watch_reconnects_++;
  state.first_watch = false;
  const std::string version_before = state.resource_version;
  const auto started = std::chrono::steady_clock::now();
  WatchEnd end = watchFrom(state.resource_version);
  const auto lasted = std::chrono::steady_clock::now() - started;
  // Only an event that moved the version is progress: a server that answers each watch with
  // an ERROR event must meet a growing backoff too.
  const bool progressed = state.resource_version != version_before;
  if (progressed) state.backoff.reset();
  if (end == WatchEnd::kTimedOut && !progressed && lasted < kShortestHealthyWatch) {
    // As client-go's reflector: a server or proxy that ends every watch at once would
    // otherwise be asked again at once, thousands of times a second.
    LOG(WARNING) << "Pod watch ended after "
                 << std::chrono::duration_cast<std::chrono::milliseconds>(lasted).count()
                 << " ms without an event; retrying with backoff";
    end = WatchEnd::kBroken;
  }
  switch (end) {
    case WatchEnd::kStopped:
      return;
    case WatchEnd::kTimedOut:
      // The normal end of every watch: resume from the last version at once.
      state.backoff.reset();
      break;
    case WatchEnd::kExpired:
    case WatchEnd::kUntrusted:
      state.need_list = true;
      pause(state.backoff.next());
      break;
    case WatchEnd::kBroken:
      pause(state.backoff.next());
      break;
  }
}

absl::StatusOr<PodInformer::ListResult> PodInformer::listAll(std::string_view resource_version) {
  ListResult result;
  std::string continue_token;
  do {
    // The watch cache ignores the limit and answers in one page; etcd answers in pages.
    std::string path = absl::StrCat("/api/v1/pods?", selector(), "&limit=", options_.page_size);
    if (!continue_token.empty()) {
      // The token holds the list's version; a resourceVersion next to it is a 400.
      absl::StrAppend(&path, "&continue=", urlEncode(continue_token));
    } else if (!resource_version.empty()) {
      absl::StrAppend(&path, "&resourceVersion=", std::string(resource_version));
    }
    auto response = http_.request("GET", path, {}, {}, &cancel_);
    if (!response.ok()) return response.status();
    // A 410 here is an expired continue token: the caller starts the list over.
    if (auto error = apiError(*response); !error.ok()) return error;
    auto page = parseDocument(response->body, options_.parse);
    if (!page.ok() || page->kind != "PodList") {
      return absl::DataLossError(absl::StrCat("the Pod list is not a PodList: ",
                                              page.ok() ? page->kind : page.status().ToString()));
    }
    if (result.resource_version.empty()) result.resource_version = page->resource_version;
    continue_token = std::move(page->continue_token);
    for (ParsedObject& item : page->objects) {
      if (auto identity = checkPodIdentity(item.pod); !identity.ok()) {
        return absl::DataLossError(absl::StrCat("Pod list: ", identity.message()));
      }
      if (item.pod.node_name != options_.node_name) continue;  // a server that ignored the selector
      result.pods.push_back(std::move(item.pod));
    }
  } while (!continue_token.empty());
  if (result.resource_version.empty()) {
    return absl::DataLossError("the Pod list has no resourceVersion");
  }
  return result;
}

PodInformer::WatchEnd PodInformer::watchFrom(std::string& resource_version) {
  const std::chrono::seconds timeout = jitteredWatchTimeout(options_.min_watch_timeout);
  const std::string path = absl::StrCat(
      "/api/v1/pods?", selector(),
      "&watch=true&allowWatchBookmarks=true&resourceVersion=", urlEncode(resource_version),
      "&timeoutSeconds=", timeout.count());
  VLOG(1) << "watching from resourceVersion " << resource_version;

  WatchStreamParser parser(options_.parse);
  std::optional<WatchEnd> verdict;
  const WatchStreamParser::EventCallback on_event = [&](absl::StatusOr<WatchEvent> event) {
    if (!event.ok()) {
      LOG(ERROR) << "Pod watch: " << event.status() << "; relisting";
      verdict = WatchEnd::kUntrusted;
      return false;
    }
    events_received_++;
    switch (event->type) {
      case WatchEventType::kAdded:
      case WatchEventType::kModified: {
        // A Pod on another node can only come from a server that ignored the selector.
        if (event->pod.node_name == options_.node_name) {
          queue_.upsert(std::move(event->pod));
        } else {
          queue_.remove(event->pod);
        }
        break;
      }
      case WatchEventType::kDeleted:
        queue_.remove(event->pod);
        break;
      case WatchEventType::kBookmark:
        break;
      case WatchEventType::kError:
        if (event->error_code == 410) {
          LOG(INFO) << "Pod watch: " << event->error_message << "; relisting";
          verdict = WatchEnd::kExpired;
        } else {
          LOG(WARNING) << "Pod watch: error " << event->error_code << " " << event->error_reason
                       << ": " << event->error_message;
          verdict = WatchEnd::kBroken;
        }
        return false;
    }
    resource_version = std::move(event->resource_version);
    return true;
  };
  auto response = http_.stream(
      path, [&](std::string_view bytes) { return parser.feed(bytes, on_event); },
      timeout + kWatchTimeoutSlack, &cancel_);

  if (cancel_.cancelled()) return WatchEnd::kStopped;
  if (verdict) return *verdict;
  if (!response.ok()) {
    LOG(WARNING) << "Pod watch broke at resourceVersion " << resource_version << ": "
                 << response.status()
                 << (parser.pendingBytes() > 0 ? " (mid-event: that event comes again)" : "");
    return WatchEnd::kBroken;
  }
  if (response->status == 410) {
    LOG(INFO) << "Pod watch: " << apiError(*response) << "; relisting";
    return WatchEnd::kExpired;
  }
  if (auto error = apiError(*response); !error.ok()) {
    LOG(WARNING) << "Pod watch refused: " << error;
    return WatchEnd::kBroken;
  }
  if (parser.pendingBytes() > 0) {
    LOG(WARNING) << "Pod watch ended mid-event at resourceVersion " << resource_version;
    return WatchEnd::kBroken;
  }
  return WatchEnd::kTimedOut;
}

void PodInformer::runDispatcher() {
  while (std::optional<PodDeltaQueue::Delta> delta = queue_.pop()) {
    base::runThreadStep("Pod dispatcher", [&] { apply(*std::move(delta)); });
    queue_.done();
  }
}

void PodInformer::apply(PodDeltaQueue::Delta delta) {
  switch (delta.kind) {
    case PodDeltaQueue::Delta::Kind::kPod:
      if (delta.remove) {
        Pod gone;
        gone.uid = delta.uid;
        if (auto change = cache_.remove(gone)) deliver(*change);
      }
      if (delta.upsert) {
        if (auto change = cache_.upsert(*std::move(delta.upsert))) deliver(*change);
      }
      break;
    case PodDeltaQueue::Delta::Kind::kList: {
      for (const PodChange& change : cache_.replace(std::move(delta.pods))) deliver(change);
      last_sync_ns_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count());
      if (!synced_.load()) {
        std::lock_guard lock(sync_mutex_);
        synced_.store(true);
        sync_changed_.notify_all();
      }
      break;
    }
  }
}

void PodInformer::deliver(const PodChange& change) {
  changes_delivered_++;
  if (handler_ == nullptr) return;
  // One change that the handler fails on must not cost the rest of a list, nor the sync.
  base::runThreadStep("Pod handler", [&] {
    switch (change.kind) {
      case PodChange::Kind::kAdd:
        handler_->onAdd(change.new_pod);
        break;
      case PodChange::Kind::kUpdate:
        handler_->onUpdate(change.old_pod, change.new_pod);
        break;
      case PodChange::Kind::kDelete:
        handler_->onDelete(change.old_pod);
        break;
    }
  });
}

}  // namespace k8s

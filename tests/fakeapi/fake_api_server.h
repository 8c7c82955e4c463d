#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace httplib {
class Server;
struct Request;
struct Response;
class DataSink;
}  // namespace httplib

namespace fakeapi {

// The recordings of a real kube-apiserver (see testdata/README.md) that the fake is held to.
std::string readTestdata(const std::string& file);

struct FakeApiServerOptions {
  // Where it listens: loopback, or an address a container reaches (a lab bridge's gateway).
  std::string address = "127.0.0.1";
  bool tls = false;
  std::string cert_file;  // TLS: the server's certificate and key (PEM)
  std::string key_file;
  // TLS: require a client certificate signed by this CA, and take it as authentication
  // (the API server's x509 authenticator).
  std::string client_ca_file;
  // The bearer token every request must carry; empty: no token is checked.
  std::string token;
};

// How a watch from a compacted resourceVersion is refused. The recorded v1.28 server answers
// 200 and then one ERROR event (its watch cache reports it in the stream); HTTP 410 is what a
// list with an expired continue token gets, and what clients must handle for a watch too.
enum class WatchExpiry { kErrorEvent, kHttpGone };

struct RecordedRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> params;
  std::string content_type;
  std::string authorization;
  std::string body;
};

// A kube-apiserver for tests, on 127.0.0.1 (or options.address) and an ephemeral port, plain HTTP
// or TLS, that answers what this project's client asks the way the recorded real one does:
//  - GET /api/v1/pods: PodList with fieldSelector (spec.nodeName, metadata.name,
//    metadata.namespace; any other field is a 400 like the real server), limit/continue
//    pagination over a consistent snapshot, and 410 Expired for a continue token whose
//    version was compacted. resourceVersion=0 is served from the watch cache when it is on
//    (see setWatchCache); any other resourceVersion is read as unset (the current state); one
//    with a continue token is a 400 like the real server's. labelSelector is ignored.
//  - GET /api/v1/pods?watch=true: a chunked HTTP/1.1 stream of newline-terminated events from a
//    resourceVersion, BOOKMARKs when asked for, the end of the stream at timeoutSeconds, and
//    410 for a compacted version or one older than a restart (see WatchExpiry, setWatchCache).
//  - POST /api/v1/namespaces/NS/events (201, 409, 422 for a foreign involvedObject.namespace)
//    and PATCH .../events/NAME (200, 404 when unknown, 415 for another patch type).
//  - 401 with the recorded Status when the bearer token is wrong.
// and, for kubectl (kubectl get/annotate, as tests/plugin drives them):
//  - discovery: GET /api (APIVersions), /apis (an APIGroupList with no groups: only core/v1
//    is served), /api/v1 (APIResourceList) and /version, as plain application/json, which
//    kubectl takes as a server without aggregated discovery;
//  - GET /api/v1/namespaces/NS/pods: PodList of one namespace with fieldSelector (as above)
//    and labelSelector (=, ==, !=, in, notin, exists, !exists);
//  - GET and PATCH /api/v1/namespaces/NS/pods/NAME: the Pod or 404 NotFound; a JSON merge
//    patch (application/merge-patch+json, or a strategic merge patch, the same for metadata)
//    where null removes a key, a stale metadata.resourceVersion is 409 Conflict, and a patch
//    that changes nothing writes nothing (no new resourceVersion), as the real server does;
//  - GET /api/v1/namespaces/NS/events: EventList with the fieldSelector fields the real server
//    supports for Events (involvedObject.*, reason, type, source, reportingComponent,
//    metadata.name, metadata.namespace); GET .../events/NAME;
//  - 403 Forbidden with the real message for what forbid() denies.
// Like etcd, one global resourceVersion counts every write, and the store survives restart().
// The watch history does too only without a watch cache (see setWatchCache).
class FakeApiServer {
 public:
  explicit FakeApiServer(FakeApiServerOptions options = {});
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // port 0: an ephemeral one. Returns once the server accepts connections.
  absl::Status start(int port = 0);
  // Closes the listening socket and every connection, watches included (mid-stream, like a
  // crashed server).
  void stop();
  // stop() then start() on the same port. An ephemeral port can be taken by another socket
  // while the server is stopped: then it is an error that says so, never a shared port.
  absl::Status restart();
  int port() const { return port_; }
  std::string url() const;

  // JSON keeps the real server's field order, so that answers compare byte for byte with the
  // recordings; the accessors below hand out plain nlohmann::json.
  // Pods. Each write bumps the global resourceVersion and reaches the open watches.
  std::string createPod(const std::string& namespace_, const std::string& name,
                        const std::string& node,
                        const std::map<std::string, std::string>& annotations = {},
                        bool host_network = false);  // returns the uid
  void setAnnotation(const std::string& namespace_, const std::string& name, const std::string& key,
                     const std::string& value);
  void removeAnnotation(const std::string& namespace_, const std::string& name,
                        const std::string& key);
  void markTerminating(const std::string& namespace_, const std::string& name);
  void deletePod(const std::string& namespace_, const std::string& name);
  uint64_t resourceVersion() const;

  // Watches.
  // Forgets the history up to now: a watch or continue token from an older version gets 410.
  void compact();
  // A BOOKMARK at the current resourceVersion to every watch that allows them.
  void sendBookmark();
  // Closes every open watch between two events (no final chunk: the client sees a broken
  // transfer).
  void dropWatches();
  // Every watch open now writes the first half of its next event, then closes.
  void cutNextEvent();
  // Bytes per HTTP chunk; 0 (the default): one chunk per event, as the real server writes.
  void setChunkSize(size_t bytes);
  void setWatchExpiry(WatchExpiry expiry);
  // On by default, as in a v1.28 server (--watch-cache=true):
  //  - a list with resourceVersion=0 is the cache's current state, whole, whatever its limit
  //    (no continue token);
  //  - start() (a restart) fills a fresh cache at the current resourceVersion: a watch from an
  //    older version gets 410 Expired (see WatchExpiry), so a client that saw anything change
  //    while the server was down relists; continue tokens, served by etcd, stay valid.
  // Off, as with --watch-cache=false: such a list comes from etcd and is paginated like any
  // other, and watches resume across restarts from any version not compacted.
  void setWatchCache(bool enabled);
  // Sends `line` and a newline, as is, to every open watch: malformed JSON, foreign kinds.
  void injectWatchLine(const std::string& line);
  bool waitForOpenWatches(int count, std::chrono::milliseconds timeout) const;

  // Faults.
  void setToken(const std::string& token);
  // The next `count` requests (after authentication) get `http_status` and an InternalError
  // or ServiceUnavailable Status.
  void failNextRequests(int count, int http_status);
  // The next `count` watches are answered 200 and one ERROR event with a Status of `code`
  // (InternalError, or ServiceUnavailable for 503), then end.
  void failNextWatches(int count, int code);
  // While stalled, requests are accepted and then left without an answer.
  void setStalled(bool stalled);
  int stalledRequests() const;

  // What clients sent, and the Events they created.
  std::vector<RecordedRequest> requests() const;
  std::vector<nlohmann::json> events() const;
  std::optional<nlohmann::json> event(const std::string& namespace_, const std::string& name) const;
  // As when an Event's TTL ran out: a PATCH of it gets 404.
  void expireEvent(const std::string& namespace_, const std::string& name);

  // For kubectl and the tests that play the controller (see the routes above).
  // The Pod as stored now (kind and apiVersion included), or nullopt.
  std::optional<nlohmann::json> pod(const std::string& namespace_, const std::string& name) const;
  void setLabel(const std::string& namespace_, const std::string& name, const std::string& key,
                const std::string& value);
  // Stores an Event as a POST would (the server fills uid, resourceVersion, creationTimestamp;
  // metadata.name or generateName is needed), without HTTP. Returns its name; "" when the name
  // is taken or missing.
  std::string createEvent(const std::string& namespace_, nlohmann::json event);
  // Applies a JSON merge patch to a stored Event (as an aggregation PATCH does: count,
  // lastTimestamp, message); false when there is no such Event.
  bool patchEvent(const std::string& namespace_, const std::string& name,
                  const nlohmann::json& patch);
  // From now on, `verb` (get, list, patch, create) on `resource` ("pods", "events", "pods/exec")
  // in any namespace is 403 Forbidden for `user`, with the real server's message. Only the
  // routes added for kubectl check it.
  void forbid(const std::string& verb, const std::string& resource,
              const std::string& user = "system:serviceaccount:rec:nobody");

  struct KubeconfigOptions {
    std::string context = "fake";
    std::string namespace_;        // the context's namespace; empty: none (kubectl uses "default")
    std::string ca_file;           // TLS: the CA that signed the server's certificate
    std::string client_cert_file;  // TLS with a client CA: the client's certificate and key
    std::string client_key_file;
  };
  // Writes a kubeconfig whose only context reaches this server (its url(), its token when it
  // checks one). For kubectl: give each run a HOME (or --cache-dir) of its own, as kubectl
  // caches discovery under $HOME/.kube/cache by server address.
  absl::Status writeKubeconfig(const std::string& path, const KubeconfigOptions& options) const;

 private:
  struct LogEntry {
    enum class Kind { kPod, kBookmark, kRaw };
    uint64_t seq;
    uint64_t resource_version;
    Kind kind;
    std::shared_ptr<const nlohmann::ordered_json> object;  // kPod: the Pod as of this event
    std::string line;                                      // the event, newline included
  };
  struct WatchRequest;
  using PodMap =
      std::map<std::string, std::shared_ptr<const nlohmann::ordered_json>>;  // by ns/name

  void installRoutes(httplib::Server& server);
  using Handler = void (FakeApiServer::*)(const httplib::Request&, httplib::Response&);
  // A route's handler: records the request, then calls `handle`.
  std::function<void(const httplib::Request&, httplib::Response&)> recorded(Handler handle);
  bool admit(const httplib::Request& request, httplib::Response& response);
  void recordRequest(const httplib::Request& request);
  void handleList(const httplib::Request& request, httplib::Response& response);
  void handleWatch(const httplib::Request& request, httplib::Response& response);
  void handleEventPost(const httplib::Request& request, httplib::Response& response);
  void handleEventPatch(const httplib::Request& request, httplib::Response& response);
  void handleNamespacedPodList(const httplib::Request& request, httplib::Response& response);
  void handlePodGet(const httplib::Request& request, httplib::Response& response);
  void handlePodPatch(const httplib::Request& request, httplib::Response& response);
  void handleEventList(const httplib::Request& request, httplib::Response& response);
  void handleEventGet(const httplib::Request& request, httplib::Response& response);
  // Answers 403 and returns true when forbid() denies this request (its namespace and name from
  // the route's pattern .../namespaces/NS/RESOURCE[/NAME]).
  bool denied(const httplib::Request& request, httplib::Response& response, const std::string& verb,
              const std::string& resource);
  // Answers the list (`kind`: PodList, EventList) of the objects in `map` (pods_, events_) of the
  // request's namespace that its labelSelector and fieldSelector (on the fields `selectable`,
  // by name, as JSON pointers) match.
  template <typename Map>
  void replyNamespacedList(const httplib::Request& request, httplib::Response& response,
                           const std::string& kind, const Map& map,
                           const std::map<std::string, std::string>& selectable);
  // The Pod or Event stored now, or nullopt.
  std::optional<nlohmann::ordered_json> storedPod(const std::string& namespace_,
                                                  const std::string& name) const;
  std::optional<nlohmann::ordered_json> storedEvent(const std::string& namespace_,
                                                    const std::string& name) const;
  // Stores an Event whose metadata has its name and namespace as a create does, the server
  // filling uid, resourceVersion, creationTimestamp (into `event` too); false, storing nothing,
  // when the name is taken.
  bool insertEvent(nlohmann::ordered_json& event);
  // Applies a JSON merge patch to a stored Event, with a new resourceVersion: the Event as
  // patched, or nullopt when there is none.
  std::optional<nlohmann::ordered_json> patchStoredEvent(const std::string& namespace_,
                                                         const std::string& name,
                                                         const nlohmann::ordered_json& patch);
  bool streamWatch(const std::shared_ptr<WatchRequest>& watch, httplib::DataSink& sink);
  bool writeChunks(httplib::DataSink& sink, std::string_view bytes);

  void appendLocked(LogEntry::Kind kind, const std::string& type,
                    std::shared_ptr<const nlohmann::ordered_json> object, std::string line = {});
  void writePodLocked(const std::string& type, nlohmann::ordered_json pod);
  template <typename Edit>
  void editPod(const std::string& namespace_, const std::string& name, Edit edit);

  const FakeApiServerOptions options_;
  int port_ = 0;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  bool stopping_ = false;
  std::string token_;
  uint64_t resource_version_ = 6797;  // where the recorded cluster was
  uint64_t history_start_ = 6797;     // compacted: watches and continues from before expire
  uint64_t watch_window_start_ = 0;   // the watch cache's start: older watches expire
  uint64_t next_seq_ = 1;
  std::deque<LogEntry> log_;
  PodMap pods_;
  std::map<uint64_t, PodMap> snapshots_;  // for paginated lists, by resourceVersion
  std::map<std::string, nlohmann::ordered_json> events_;
  std::vector<RecordedRequest> requests_;
  size_t chunk_size_ = 0;
  WatchExpiry watch_expiry_ = WatchExpiry::kErrorEvent;
  bool watch_cache_ = true;
  uint64_t last_watch_id_ = 0;
  uint64_t drop_up_to_watch_ = 0;  // watches with an id up to this close
  uint64_t cut_up_to_watch_ = 0;   // ... and these cut their next event from cut_from_seq_
  uint64_t cut_from_seq_ = 0;
  int open_watches_ = 0;
  int fail_count_ = 0;
  int fail_status_ = 0;
  int failed_watches_ = 0;
  int failed_watch_code_ = 0;
  bool stalled_ = false;
  int stalled_requests_ = 0;
  std::map<std::string, std::string> forbidden_;  // "verb resource" -> user
};

}  // namespace fakeapi

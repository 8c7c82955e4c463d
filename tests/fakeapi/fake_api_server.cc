#include "tests/fakeapi/fake_api_server.h"

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/support/files.h"

namespace fakeapi {
namespace {

using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Worker threads of the server: every open watch holds one.
constexpr size_t kServerThreads = 64;
constexpr int kDefaultWatchTimeoutSeconds = 1800;

std::string nowRfc3339() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

std::string newUid() {
  static std::mutex mutex;
  static std::mt19937_64 random(std::random_device{}());
  std::lock_guard lock(mutex);
  const uint64_t high = random();
  const uint64_t low = random();
  char text[40];
  std::snprintf(text, sizeof(text), "%08x-%04x-4%03x-%04x-%012llx",
                static_cast<unsigned>(high >> 32), static_cast<unsigned>((high >> 16) & 0xffff),
                static_cast<unsigned>(high & 0xfff),
                static_cast<unsigned>(0x8000 | ((low >> 48) & 0x3fff)),
                static_cast<unsigned long long>(low & 0xffffffffffffULL));
  return text;
}

json apiStatus(int code, const std::string& reason, const std::string& message,
               json details = nullptr) {
  json status = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
                 {"status", "Failure"}, {"message", message}, {"reason", reason}};
  if (!details.is_null()) status["details"] = std::move(details);
  status["code"] = code;
  return status;
}

// kube-apiserver pretty-prints JSON for curl and wget, which is why the recordings are
// indented; every other client gets it compact.
std::string render(const json& body, const httplib::Request& request) {
  const std::string agent = request.get_header_value("User-Agent");
  const bool pretty = absl::StartsWith(agent, "curl/") || absl::StartsWith(agent, "Wget/");
  return pretty ? body.dump(2) : body.dump();
}

void reply(const httplib::Request& request, httplib::Response& response, int code,
           const json& body) {
  response.status = code;
  response.set_header("Cache-Control", "no-cache, private");
  response.set_header("Audit-Id", newUid());
  response.set_content(render(body, request), "application/json");
}

void replyStatus(const httplib::Request& request, httplib::Response& response, int code,
                 const std::string& reason, const std::string& message, json details = nullptr) {
  reply(request, response, code, apiStatus(code, reason, message, std::move(details)));
}

// The fields a fieldSelector may name, as JSON pointers into the object: those the real
// server's strategy for the kind supports.
using SelectableFields = std::map<std::string, std::string>;

const SelectableFields kPodFields = {
    {"spec.nodeName", "/spec/nodeName"},
    {"metadata.name", "/metadata/name"},
    {"metadata.namespace", "/metadata/namespace"},
    {"status.phase", "/status/phase"},
};

const SelectableFields kEventFields = {
    {"involvedObject.kind", "/involvedObject/kind"},
    {"involvedObject.namespace", "/involvedObject/namespace"},
    {"involvedObject.name", "/involvedObject/name"},
    {"involvedObject.uid", "/involvedObject/uid"},
    {"involvedObject.apiVersion", "/involvedObject/apiVersion"},
    {"involvedObject.resourceVersion", "/involvedObject/resourceVersion"},
    {"involvedObject.fieldPath", "/involvedObject/fieldPath"},
    {"reason", "/reason"},
    {"reportingComponent", "/reportingComponent"},
    {"source", "/source/component"},
    {"type", "/type"},
    {"metadata.name", "/metadata/name"},
    {"metadata.namespace", "/metadata/namespace"},
};

// A parsed fieldSelector, its terms ANDed. A field that is not set is "".
struct FieldSelector {
  struct Term {
    json::json_pointer pointer;
    std::string value;
    bool equal;
  };
  std::vector<Term> terms;

  bool matches(const json& object) const {
    for (const Term& term : terms) {
      std::string actual;
      if (object.contains(term.pointer)) {
        const json& value = object.at(term.pointer);
        actual = value.is_string() ? value.get<std::string>() : value.is_null() ? "" : value.dump();
      }
      if ((actual == term.value) != term.equal) return false;
    }
    return true;
  }
};

std::optional<FieldSelector> parseFieldSelector(const std::string& text,
                                                const SelectableFields& fields,
                                                std::string& error) {
  FieldSelector selector;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    size_t at;
    size_t skip;
    bool equal = true;
    if ((at = part.find("!=")) != absl::string_view::npos) {
      equal = false;
      skip = 2;
    } else if ((at = part.find("==")) != absl::string_view::npos) {
      skip = 2;
    } else if ((at = part.find('=')) != absl::string_view::npos) {
      skip = 1;
    } else {
      error = absl::StrCat("invalid selector: '", std::string(part), "'; can't understand '",
                           std::string(part), "'");
      return std::nullopt;
    }
    const std::string field(part.substr(0, at));
    auto it = fields.find(field);
    if (it == fields.end()) {
      error = "field label not supported: " + field;
      return std::nullopt;
    }
    selector.terms.push_back(
        {json::json_pointer(it->second), std::string(part.substr(at + skip)), equal});
  }
  return selector;
}

// The real server's continue token: base64url of {"v","rv","start"}, start being the key after
// which the next page begins.
std::string encodeContinue(uint64_t resource_version, const std::string& last_key) {
  const json token = {{"v", "meta.k8s.io/v1"},
                      {"rv", resource_version},
                      {"start", last_key + std::string(1, '\0')}};
  return absl::WebSafeBase64Escape(token.dump());
}

std::optional<std::pair<uint64_t, std::string>> decodeContinue(const std::string& token) {
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return std::nullopt;
  const json decoded = json::parse(text, nullptr, false);
  if (!decoded.is_object() || !decoded.contains("rv") || !decoded["rv"].is_number_unsigned() ||
      !decoded.contains("start") || !decoded["start"].is_string()) {
    return std::nullopt;
  }
  return std::make_pair(decoded["rv"].get<uint64_t>(), decoded["start"].get<std::string>());
}

std::string eventLine(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump() + "\n";
}

// A watch answered 200 and then one ERROR event carrying `status`, as the real server does when
// its watch cache refuses the watch.
void replyErrorEvent(httplib::Response& response, const json& status) {
  const std::string line = eventLine("ERROR", status);
  response.set_header("Cache-Control", "no-cache, private");
  response.set_chunked_content_provider("application/json",
                                        [line](size_t, httplib::DataSink& sink) {
                                          sink.write(line.data(), line.size());
                                          sink.done();
                                          return true;
                                        });
}

const json& podTemplate() {
  // A Pod as a v1.28 server stores it (managedFields, volumes, conditions...): the fake's
  // Pods weigh what real ones do.
  static const json pod = [] {
    json page = json::parse(readTestdata("list-page1.json"));
    json item = page["items"][0];
    item["kind"] = "Pod";
    item["apiVersion"] = "v1";
    return item;
  }();
  return pod;
}

std::string podKey(const std::string& namespace_, const std::string& name) {
  return namespace_ + "/" + name;
}

json listItem(const json& pod) {
  json item = pod;  // list items carry no kind or apiVersion, as recorded
  item.erase("kind");
  item.erase("apiVersion");
  return item;
}

// --- What kubectl needs beside the controller's requests -----------------------------------

// A labelSelector: equality (=, ==, !=), set (in, notin) and existence (key, !key) terms, ANDed.
struct LabelSelector {
  struct Term {
    enum class Op { kIn, kNotIn, kExists, kNotExists } op;
    std::string key;
    std::set<std::string> values;
  };
  std::vector<Term> terms;

  bool matches(const json& object) const {
    const json* labels = nullptr;
    if (object.contains("metadata") && object["metadata"].contains("labels") &&
        object["metadata"]["labels"].is_object()) {
      labels = &object["metadata"]["labels"];
    }
    for (const Term& term : terms) {
      const bool has = labels != nullptr && labels->contains(term.key);
      const std::string value =
          has && (*labels)[term.key].is_string() ? (*labels)[term.key].get<std::string>() : "";
      switch (term.op) {
        case Term::Op::kExists:
          if (!has) return false;
          break;
        case Term::Op::kNotExists:
          if (has) return false;
          break;
        case Term::Op::kIn:
          if (!has || term.values.count(value) == 0) return false;
          break;
        case Term::Op::kNotIn:
          if (has && term.values.count(value) != 0) return false;
          break;
      }
    }
    return true;
  }
};

std::string trimmed(absl::string_view text) {
  return std::string(absl::StripAsciiWhitespace(text));
}

std::optional<LabelSelector> parseLabelSelector(const std::string& text, std::string& error) {
  LabelSelector selector;
  // Commas separate terms, except inside the parentheses of in/notin.
  std::vector<std::string> parts;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(current);
      current.clear();
    } else {
      current += c;
    }
  }
  parts.push_back(current);
  for (const std::string& raw : parts) {
    const std::string part = trimmed(raw);
    if (part.empty()) continue;
    using Op = LabelSelector::Term::Op;
    LabelSelector::Term term;
    size_t at;
    if (part[0] == '!') {
      term.op = Op::kNotExists;
      term.key = trimmed(part.substr(1));
    } else if ((at = part.find("!=")) != std::string::npos) {
      term.op = Op::kNotIn;
      term.key = trimmed(part.substr(0, at));
      term.values.insert(trimmed(part.substr(at + 2)));
    } else if ((at = part.find("==")) != std::string::npos) {
      term.op = Op::kIn;
      term.key = trimmed(part.substr(0, at));
      term.values.insert(trimmed(part.substr(at + 2)));
    } else if ((at = part.find('=')) != std::string::npos) {
      term.op = Op::kIn;
      term.key = trimmed(part.substr(0, at));
      term.values.insert(trimmed(part.substr(at + 1)));
    } else if (const size_t open = part.find('('); open != std::string::npos) {
      const std::vector<std::string> words =
          absl::StrSplit(trimmed(part.substr(0, open)), ' ', absl::SkipEmpty());
      if (words.size() != 2 || (words[1] != "in" && words[1] != "notin") || part.back() != ')') {
        error = absl::StrCat("unable to parse requirement: found '", part, "'");
        return std::nullopt;
      }
      term.op = words[1] == "in" ? Op::kIn : Op::kNotIn;
      term.key = words[0];
      for (absl::string_view value :
           absl::StrSplit(part.substr(open + 1, part.size() - open - 2), ',')) {
        term.values.insert(trimmed(value));
      }
    } else {
      term.op = Op::kExists;
      term.key = part;
    }
    if (term.key.empty()) {
      error = absl::StrCat("unable to parse requirement: found '", part, "'");
      return std::nullopt;
    }
    selector.terms.push_back(std::move(term));
  }
  return selector;
}

// Discovery as a v1.28 server without aggregated discovery answers it: only core/v1.
json apiVersions() {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", "127.0.0.1:6443"}}}}};
}

json apiGroupList() {
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", json::array()}};
}

json apiResourceList() {
  const json all_verbs = {"create", "delete", "deletecollection", "get",
                          "list",   "patch",  "update",           "watch"};
  auto resource = [](const std::string& name, const std::string& singular, bool namespaced,
                     const std::string& kind, const json& verbs) {
    return json{{"name", name},
                {"singularName", singular},
                {"namespaced", namespaced},
                {"kind", kind},
                {"verbs", verbs}};
  };
  json events = resource("events", "event", true, "Event", all_verbs);
  events["shortNames"] = {"ev"};
  json namespaces = resource("namespaces", "namespace", false, "Namespace",
                             {"create", "delete", "get", "list", "patch", "update", "watch"});
  namespaces["shortNames"] = {"ns"};
  json nodes = resource("nodes", "node", false, "Node", all_verbs);
  nodes["shortNames"] = {"no"};
  json pods = resource("pods", "pod", true, "Pod", all_verbs);
  pods["shortNames"] = {"po"};
  pods["categories"] = {"all"};
  return {{"kind", "APIResourceList"},
          {"groupVersion", "v1"},
          {"resources",
           {events, namespaces, nodes, pods,
            resource("pods/attach", "", true, "PodAttachOptions", {"create", "get"}),
            resource("pods/binding", "", true, "Binding", {"create"}),
            resource("pods/ephemeralcontainers", "", true, "Pod", {"get", "patch", "update"}),
            resource("pods/eviction", "", true, "Eviction", {"create"}),
            resource("pods/exec", "", true, "PodExecOptions", {"create", "get"}),
            resource("pods/log", "", true, "Pod", {"get"}),
            resource("pods/portforward", "", true, "PodPortForwardOptions", {"create", "get"}),
            resource("pods/proxy", "", true, "PodProxyOptions",
                     {"create", "delete", "get", "patch", "update"}),
            resource("pods/status", "", true, "Pod", {"get", "patch", "update"})}}};
}

json versionInfo() {
  return {{"major", "1"},
          {"minor", "28"},
          {"gitVersion", "v1.28.7"},
          {"gitCommit", "c8dcb00be9961ec36d141d2e4103f85f92bcf291"},
          {"gitTreeState", "clean"},
          {"buildDate", "2024-02-14T10:32:40Z"},
          {"goVersion", "go1.21.7"},
          {"compiler", "gc"},
          {"platform", "linux/amd64"}};
}

// A merge patch (RFC 7386) as the API server applies it to metadata: null removes a key, and a
// map left empty is dropped (omitempty).
void applyMergePatch(json& object, const json& patch) {
  object.merge_patch(patch);
  if (object.contains("metadata")) {
    for (const char* map : {"annotations", "labels"}) {
      if (object["metadata"].contains(map) && object["metadata"][map].empty()) {
        object["metadata"].erase(map);
      }
    }
  }
}

// --- The steps the routes for kubectl share --------------------------------------------------

// The NS and NAME of a route .../namespaces/([^/]+)/RESOURCE[/([^/]+)]; NAME is empty on a list.
struct Target {
  std::string namespace_;
  std::string name;
};

Target targetOf(const httplib::Request& request) {
  return {request.matches[1].str(), request.matches.size() > 2 ? request.matches[2].str() : ""};
}

bool isWatch(const httplib::Request& request) {
  const std::string watch = request.get_param_value("watch");
  return watch == "true" || watch == "1";
}

// A Status about the object `name` of `resource` (pods, events), or about `resource` itself when
// `name` is empty, with the details the real server gives.
void replyObjectStatus(const httplib::Request& request, httplib::Response& response, int code,
                       const std::string& reason, const std::string& resource,
                       const std::string& name, const std::string& message) {
  json details = {{"kind", resource}};
  if (!name.empty()) details = {{"name", name}, {"kind", resource}};
  replyStatus(request, response, code, reason, message, std::move(details));
}

void replyNotFound(const httplib::Request& request, httplib::Response& response,
                   const std::string& resource, const std::string& name) {
  replyObjectStatus(request, response, 404, "NotFound", resource, name,
                    absl::StrCat(resource, " \"", name, "\" not found"));
}

// 200 and `object`, or 404 NotFound when there is none.
void replyFound(const httplib::Request& request, httplib::Response& response,
                const std::string& resource, const std::string& name,
                const std::optional<json>& object) {
  if (!object) return replyNotFound(request, response, resource, name);
  reply(request, response, 200, *object);
}

json listOf(const std::string& kind, json metadata, json items) {
  return {{"kind", kind},
          {"apiVersion", "v1"},
          {"metadata", std::move(metadata)},
          {"items", std::move(items)}};
}

// The body of a PATCH, a JSON merge patch or a strategic merge patch (the same for the fields the
// fake serves); nullopt once the request got its 415 or 400.
std::optional<json> mergePatchOf(const httplib::Request& request, httplib::Response& response) {
  const std::string content_type = request.get_header_value("Content-Type");
  if (content_type != "application/strategic-merge-patch+json" &&
      content_type != "application/merge-patch+json") {
    replyStatus(request, response, 415, "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml, application/strategic-merge-patch+json");
    return std::nullopt;
  }
  json patch = json::parse(request.body, nullptr, false);
  if (!patch.is_object()) {
    replyStatus(request, response, 400, "BadRequest", "the patch is not a JSON object");
    return std::nullopt;
  }
  return patch;
}

using Match = std::function<bool(const json&)>;

// The request's fieldSelector (on `selectable`, the fields of the kind listed) and its
// labelSelector, ANDed; nullopt, with `error`, when either does not parse.
std::optional<Match> parseSelectors(const httplib::Request& request,
                                    const SelectableFields& selectable, std::string& error) {
  auto fields = parseFieldSelector(request.get_param_value("fieldSelector"), selectable, error);
  if (!fields) return std::nullopt;
  auto labels = parseLabelSelector(request.get_param_value("labelSelector"), error);
  if (!labels) return std::nullopt;
  return Match([fields = std::move(*fields), labels = std::move(*labels)](const json& object) {
    return fields.matches(object) && labels.matches(object);
  });
}

// The stores: Pods by pointer, Events by value, both keyed NS/NAME.
const json& objectOf(const json& object) { return object; }
const json& objectOf(const std::shared_ptr<const json>& object) { return *object; }

template <typename Map>
json namespaceItems(const Map& map, const std::string& namespace_, const Match& match) {
  json items = json::array();
  const std::string prefix = namespace_ + "/";
  for (auto it = map.lower_bound(prefix); it != map.end() && it->first.starts_with(prefix); ++it) {
    if (match(objectOf(it->second))) items.push_back(listItem(objectOf(it->second)));
  }
  return items;
}

template <typename Map>
std::optional<json> findIn(const Map& map, const std::string& namespace_, const std::string& name) {
  auto it = map.find(podKey(namespace_, name));
  if (it == map.end()) return std::nullopt;
  return objectOf(it->second);
}

// The nlohmann::json the accessors hand out, from the store's ordered_json.
std::optional<nlohmann::json> plain(const std::optional<json>& object) {
  if (!object) return std::nullopt;
  return nlohmann::json(*object);
}

// metadata.name, or one made from metadata.generateName as the real server makes it; "" when
// there is neither.
std::string nameOrGenerated(const json& metadata) {
  std::string name = metadata.value("name", "");
  if (name.empty() && metadata.contains("generateName")) {
    name = metadata.value("generateName", "") + newUid().substr(0, 5);
  }
  return name;
}

}  // namespace

std::string readTestdata(const std::string& file) {
  return testsupport::readFile(std::string(FAKEAPI_TESTDATA_DIR) + "/" + file);
}

struct FakeApiServer::WatchRequest {
  uint64_t id;
  uint64_t next_seq;
  FieldSelector selector;
  bool bookmarks;
  Clock::time_point deadline;
  std::string initial;  // ADDED events of a watch from resourceVersion 0
};

FakeApiServer::FakeApiServer(FakeApiServerOptions options)
    : options_(std::move(options)), token_(options_.token) {
  // A client that goes away mid-write must not kill the test binary.
  signal(SIGPIPE, SIG_IGN);
}

FakeApiServer::~FakeApiServer() { stop(); }

std::string FakeApiServer::url() const {
  return absl::StrCat(options_.tls ? "https" : "http", "://", options_.address, ":", port_);
}

absl::Status FakeApiServer::start(int port) {
  if (server_) return absl::FailedPreconditionError("already started");
  std::unique_ptr<httplib::Server> server;
  if (options_.tls) {
    auto tls = std::make_unique<httplib::SSLServer>(
        options_.cert_file.c_str(), options_.key_file.c_str(),
        options_.client_ca_file.empty() ? nullptr : options_.client_ca_file.c_str());
    if (!tls->is_valid()) return absl::InvalidArgumentError("TLS server: bad certificate or key");
    server = std::move(tls);
  } else {
    server = std::make_unique<httplib::Server>();
  }
  server->new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };
  server->set_keep_alive_max_count(1000);
  server->set_tcp_nodelay(true);  // as Go servers do: no Nagle delay between header and body
  // SO_REUSEADDR, not httplib's SO_REUSEPORT: a restart rebinds its port past the old
  // connections in TIME_WAIT, but never next to a listener (another test's fake) that took the
  // port while this one was stopped, which would split the connections between the two.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  installRoutes(*server);
  if (port == 0) {
    port = server->bind_to_any_port(options_.address);
    if (port < 0) return absl::UnavailableError("cannot bind an ephemeral port");
  } else if (!server->bind_to_port(options_.address, port)) {
    return absl::UnavailableError(
        absl::StrCat("cannot bind ", options_.address, ":", port,
                     ": another socket took the port while the server was stopped (a lost race)"));
  }
  port_ = port;
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
    if (watch_cache_) watch_window_start_ = resource_version_;
  }
  httplib::Server* raw = server.get();
  server_ = std::move(server);
  listener_ = std::thread([raw] { raw->listen_after_bind(); });
  // stop() is a no-op until the listen loop runs, so do not return before it does.
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!raw->is_running()) {
    if (Clock::now() > deadline) return absl::DeadlineExceededError("server did not start");
    std::this_thread::yield();
  }
  return absl::OkStatus();
}

void FakeApiServer::stop() {
  if (!server_) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  server_->stop();
  if (listener_.joinable()) listener_.join();
  server_.reset();
}

absl::Status FakeApiServer::restart() {
  stop();
  return start(port_);
}

void FakeApiServer::installRoutes(httplib::Server& server) {
  server.set_pre_routing_handler(
      [this](const httplib::Request& request, httplib::Response& response) {
        return admit(request, response) ? httplib::Server::HandlerResponse::Unhandled
                                        : httplib::Server::HandlerResponse::Handled;
      });
  server.Get("/api/v1/pods", [this](const httplib::Request& request, httplib::Response& response) {
    recordRequest(request);
    if (isWatch(request)) {
      handleWatch(request, response);
    } else {
      handleList(request, response);
    }
  });
  server.Post(R"(/api/v1/namespaces/([^/]+)/events)", recorded(&FakeApiServer::handleEventPost));
  server.Patch(R"(/api/v1/namespaces/([^/]+)/events/([^/]+))",
               recorded(&FakeApiServer::handleEventPatch));
  // What kubectl asks.
  const std::vector<std::pair<std::string, std::function<json()>>> discovery = {
      {"/api", apiVersions},
      {"/apis", apiGroupList},
      {"/api/v1", apiResourceList},
      {"/version", versionInfo}};
  for (const auto& [path, body] : discovery) {
    server.Get(path, [this, body](const httplib::Request& request, httplib::Response& response) {
      recordRequest(request);
      reply(request, response, 200, body());
    });
  }
  server.Get(R"(/api/v1/namespaces/([^/]+)/pods)",
             recorded(&FakeApiServer::handleNamespacedPodList));
  server.Get(R"(/api/v1/namespaces/([^/]+)/pods/([^/]+))", recorded(&FakeApiServer::handlePodGet));
  server.Patch(R"(/api/v1/namespaces/([^/]+)/pods/([^/]+))",
               recorded(&FakeApiServer::handlePodPatch));
  server.Get(R"(/api/v1/namespaces/([^/]+)/events)", recorded(&FakeApiServer::handleEventList));
  server.Get(R"(/api/v1/namespaces/([^/]+)/events/([^/]+))",
             recorded(&FakeApiServer::handleEventGet));
}

std::function<void(const httplib::Request&, httplib::Response&)> FakeApiServer::recorded(
    Handler handle) {
  return [this, handle](const httplib::Request& request, httplib::Response& response) {
    recordRequest(request);
    (this->*handle)(request, response);
  };
}

bool FakeApiServer::denied(const httplib::Request& request, httplib::Response& response,
                           const std::string& verb, const std::string& resource) {
  std::string user;
  {
    std::lock_guard lock(mutex_);
    auto it = forbidden_.find(verb + " " + resource);
    if (it == forbidden_.end()) return false;
    user = it->second;
  }
  // As the real authorizer words it: `pods "web" is forbidden: User "u" cannot get resource
  // "pods" in API group "" in the namespace "default"`.
  const Target target = targetOf(request);
  const std::string top = resource.substr(0, resource.find('/'));
  const std::string subject =
      target.name.empty() ? top : absl::StrCat(top, " \"", target.name, "\"");
  replyObjectStatus(
      request, response, 403, "Forbidden", top, target.name,
      absl::StrCat(subject, " is forbidden: User \"", user, "\" cannot ", verb, " resource \"",
                   resource, "\" in API group \"\" in the namespace \"", target.namespace_, "\""));
  return true;
}

template <typename Map>
void FakeApiServer::replyNamespacedList(const httplib::Request& request,
                                        httplib::Response& response, const std::string& kind,
                                        const Map& map,
                                        const std::map<std::string, std::string>& selectable) {
  std::string error;
  const std::optional<Match> match = parseSelectors(request, selectable, error);
  if (!match) return replyStatus(request, response, 400, "BadRequest", error);
  std::unique_lock lock(mutex_);
  json items = namespaceItems(map, targetOf(request).namespace_, *match);
  const std::string version = std::to_string(resource_version_);
  lock.unlock();
  reply(request, response, 200, listOf(kind, {{"resourceVersion", version}}, std::move(items)));
}

void FakeApiServer::handleNamespacedPodList(const httplib::Request& request,
                                            httplib::Response& response) {
  if (denied(request, response, "list", "pods")) return;
  if (isWatch(request)) {
    return replyStatus(request, response, 400, "BadRequest",
                       "the fake API server watches only /api/v1/pods");
  }
  replyNamespacedList(request, response, "PodList", pods_, kPodFields);
}

void FakeApiServer::handlePodGet(const httplib::Request& request, httplib::Response& response) {
  if (denied(request, response, "get", "pods")) return;
  const Target target = targetOf(request);
  replyFound(request, response, "pods", target.name, storedPod(target.namespace_, target.name));
}

void FakeApiServer::handlePodPatch(const httplib::Request& request, httplib::Response& response) {
  if (denied(request, response, "patch", "pods")) return;
  std::optional<json> patch = mergePatchOf(request, response);
  if (!patch) return;
  const Target target = targetOf(request);
  std::unique_lock lock(mutex_);
  auto it = pods_.find(podKey(target.namespace_, target.name));
  if (it == pods_.end()) {
    lock.unlock();
    return replyNotFound(request, response, "pods", target.name);
  }
  const json& current = *it->second;
  if (patch->contains("metadata") && (*patch)["metadata"].is_object() &&
      (*patch)["metadata"].contains("resourceVersion")) {
    if ((*patch)["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]) {
      lock.unlock();
      return replyObjectStatus(
          request, response, 409, "Conflict", "pods", target.name,
          absl::StrCat("Operation cannot be fulfilled on pods \"", target.name,
                       "\": the object has been modified; please apply your changes to the latest "
                       "version and try again"));
    }
    (*patch)["metadata"].erase("resourceVersion");
  }
  json updated = current;
  applyMergePatch(updated, *patch);
  // Identity is not the patch's to change.
  for (const char* field : {"name", "namespace", "uid", "creationTimestamp"}) {
    updated["metadata"][field] = current["metadata"][field];
  }
  if (updated == current) {  // a no-op: nothing written, the same resourceVersion
    lock.unlock();
    return reply(request, response, 200, current);
  }
  writePodLocked("MODIFIED", std::move(updated));
  const json stored = *pods_.at(podKey(target.namespace_, target.name));
  lock.unlock();
  reply(request, response, 200, stored);
}

void FakeApiServer::handleEventList(const httplib::Request& request, httplib::Response& response) {
  if (denied(request, response, "list", "events")) return;
  replyNamespacedList(request, response, "EventList", events_, kEventFields);
}

void FakeApiServer::handleEventGet(const httplib::Request& request, httplib::Response& response) {
  if (denied(request, response, "get", "events")) return;
  const Target target = targetOf(request);
  std::optional<json> event = storedEvent(target.namespace_, target.name);
  if (event) {
    (*event)["kind"] = "Event";
    (*event)["apiVersion"] = "v1";
  }
  replyFound(request, response, "events", target.name, event);
}

bool FakeApiServer::admit(const httplib::Request& request, httplib::Response& response) {
  std::unique_lock lock(mutex_);
  ++stalled_requests_;
  changed_.wait(lock, [this] { return !stalled_ || stopping_; });
  --stalled_requests_;
  const bool authenticated = !options_.client_ca_file.empty() || token_.empty() ||
                             request.get_header_value("Authorization") == "Bearer " + token_;
  if (!authenticated) {
    lock.unlock();
    recordRequest(request);
    response.set_header("Connection", "close");
    reply(request, response, 401, json::parse(readTestdata("unauthorized.json")));
    return false;
  }
  if (fail_count_ > 0) {
    --fail_count_;
    const int status = fail_status_;
    lock.unlock();
    recordRequest(request);
    response.set_header("Connection", "close");
    replyStatus(request, response, status, status == 503 ? "ServiceUnavailable" : "InternalError",
                "injected failure by the fake API server");
    return false;
  }
  return true;
}

void FakeApiServer::recordRequest(const httplib::Request& request) {
  RecordedRequest recorded{request.method,
                           request.path,
                           {},
                           request.get_header_value("Content-Type"),
                           request.get_header_value("Authorization"),
                           request.body};
  for (const auto& [key, value] : request.params) recorded.params[key] = value;
  std::lock_guard lock(mutex_);
  requests_.push_back(std::move(recorded));
}

void FakeApiServer::handleList(const httplib::Request& request, httplib::Response& response) {
  std::string error;
  const auto selector =
      parseFieldSelector(request.get_param_value("fieldSelector"), kPodFields, error);
  if (!selector) return replyStatus(request, response, 400, "BadRequest", error);
  uint64_t limit = 0;
  if (request.has_param("limit") && !absl::SimpleAtoi(request.get_param_value("limit"), &limit)) {
    return replyStatus(request, response, 400, "BadRequest", "invalid limit");
  }
  const std::string continue_token = request.get_param_value("continue");
  const std::string version = request.get_param_value("resourceVersion");
  if (!continue_token.empty() && !version.empty() && version != "0") {
    return replyStatus(request, response, 400, "BadRequest",
                       "specifying resource version is not allowed when using continue");
  }

  std::unique_lock lock(mutex_);
  // The watch cache has no pages: it ignores the limit (and a continue goes to etcd).
  if (watch_cache_ && version == "0" && continue_token.empty()) limit = 0;
  uint64_t list_version = resource_version_;
  std::string start_after;
  const PodMap* source = &pods_;
  if (!continue_token.empty()) {
    const auto decoded = decodeContinue(continue_token);
    if (!decoded) {
      lock.unlock();
      return replyStatus(request, response, 400, "BadRequest",
                         "continue key is not valid: illegal base64 data");
    }
    list_version = decoded->first;
    start_after = decoded->second;
    auto snapshot = snapshots_.find(list_version);
    if (list_version < history_start_ || snapshot == snapshots_.end()) {
      lock.unlock();
      return replyStatus(
          request, response, 410, "Expired",
          "The provided continue parameter is too old to display a consistent list result. You "
          "can start a new list without the continue parameter, or use the continue token in "
          "this response to retrieve the remainder of the results. Continuing with the "
          "provided token results in an inconsistent list - objects that were created, "
          "modified, or deleted between the time the first chunk was returned and now may "
          "show up in the list.");
    }
    source = &snapshot->second;
  } else if (limit > 0) {
    source = &(snapshots_[list_version] = pods_);  // later pages read this version
  }
  json items = json::array();
  std::string last_key;
  bool more = false;
  for (auto it = start_after.empty() ? source->begin() : source->upper_bound(start_after);
       it != source->end(); ++it) {
    if (!selector->matches(*it->second)) continue;
    if (limit > 0 && items.size() == limit) {
      more = true;
      break;
    }
    items.push_back(listItem(*it->second));
    last_key = it->first;
  }
  lock.unlock();
  json metadata = {{"resourceVersion", std::to_string(list_version)}};
  if (more) metadata["continue"] = encodeContinue(list_version, last_key);
  reply(request, response, 200,
        {{"kind", "PodList"}, {"apiVersion", "v1"}, {"metadata", metadata}, {"items", items}});
}

void FakeApiServer::handleWatch(const httplib::Request& request, httplib::Response& response) {
  std::string error;
  const auto selector =
      parseFieldSelector(request.get_param_value("fieldSelector"), kPodFields, error);
  if (!selector) return replyStatus(request, response, 400, "BadRequest", error);
  const std::string from_text = request.get_param_value("resourceVersion");
  uint64_t from = 0;
  if (!from_text.empty() && !absl::SimpleAtoi(from_text, &from)) {
    return replyStatus(request, response, 400, "BadRequest",
                       "invalid resource version: " + from_text);
  }
  int timeout_seconds = kDefaultWatchTimeoutSeconds;
  if (request.has_param("timeoutSeconds")) {
    absl::SimpleAtoi(request.get_param_value("timeoutSeconds"), &timeout_seconds);
  }

  auto watch = std::make_shared<WatchRequest>();
  watch->selector = *selector;
  watch->bookmarks = request.get_param_value("allowWatchBookmarks") == "true";
  watch->deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  std::unique_lock lock(mutex_);
  if (failed_watches_ > 0) {
    --failed_watches_;
    const int code = failed_watch_code_;
    lock.unlock();
    return replyErrorEvent(response,
                           apiStatus(code, code == 503 ? "ServiceUnavailable" : "InternalError",
                                     "injected watch error by the fake API server"));
  }
  const uint64_t oldest = std::max(history_start_, watch_cache_ ? watch_window_start_ : 0);
  if (from != 0 && from < oldest) {
    const json expired = apiStatus(
        410, "Expired", absl::StrCat("too old resource version: ", from, " (", oldest + 1, ")"));
    const WatchExpiry expiry = watch_expiry_;
    lock.unlock();
    if (expiry == WatchExpiry::kHttpGone) return reply(request, response, 410, expired);
    return replyErrorEvent(response, expired);
  }
  watch->id = ++last_watch_id_;
  if (from == 0) {
    // resourceVersion 0 or none: the current state as ADDED events, then the changes.
    for (const auto& [key, pod] : pods_) {
      if (watch->selector.matches(*pod)) watch->initial += eventLine("ADDED", *pod);
    }
    watch->next_seq = next_seq_;
  } else {
    watch->next_seq = next_seq_;
    for (auto it = log_.rbegin(); it != log_.rend() && it->resource_version > from; ++it) {
      watch->next_seq = it->seq;
    }
  }
  lock.unlock();
  response.set_header("Cache-Control", "no-cache, private");
  response.set_chunked_content_provider(
      "application/json",
      [this, watch](size_t, httplib::DataSink& sink) { return streamWatch(watch, sink); });
}

bool FakeApiServer::writeChunks(httplib::DataSink& sink, std::string_view bytes) {
  size_t chunk_size;
  {
    std::lock_guard lock(mutex_);
    chunk_size = chunk_size_;
  }
  if (chunk_size == 0) chunk_size = bytes.size();
  while (!bytes.empty()) {
    const size_t n = std::min(chunk_size, bytes.size());
    if (!sink.write(bytes.data(), n)) return false;
    bytes.remove_prefix(n);
  }
  return true;
}

bool FakeApiServer::streamWatch(const std::shared_ptr<WatchRequest>& watch,
                                httplib::DataSink& sink) {
  {
    std::lock_guard lock(mutex_);
    ++open_watches_;
  }
  changed_.notify_all();
  struct Closer {
    FakeApiServer* server;
    ~Closer() {
      {
        std::lock_guard lock(server->mutex_);
        --server->open_watches_;
      }
      server->changed_.notify_all();
    }
  } closer{this};

  if (!watch->initial.empty() && !writeChunks(sink, watch->initial)) return false;
  for (;;) {
    std::vector<std::string> batch;  // one chunk per event, as the real server flushes them
    bool cut = false;
    {
      std::unique_lock lock(mutex_);
      const auto ready = [&] {
        return stopping_ || watch->id <= drop_up_to_watch_ || next_seq_ > watch->next_seq;
      };
      if (!changed_.wait_until(lock, watch->deadline, ready)) break;  // timeoutSeconds
      if (stopping_ || watch->id <= drop_up_to_watch_) return false;
      for (; watch->next_seq < next_seq_ && !cut; ++watch->next_seq) {
        const LogEntry& entry = log_[watch->next_seq - 1];
        const bool wanted =
            entry.kind == LogEntry::Kind::kRaw ||
            (entry.kind == LogEntry::Kind::kBookmark && watch->bookmarks) ||
            (entry.kind == LogEntry::Kind::kPod && watch->selector.matches(*entry.object));
        if (!wanted) continue;
        cut = watch->id <= cut_up_to_watch_ && entry.seq >= cut_from_seq_;
        batch.push_back(cut ? entry.line.substr(0, entry.line.size() / 2) : entry.line);
      }
    }
    for (const std::string& line : batch) {
      if (!writeChunks(sink, line)) return false;
    }
    if (cut) return false;
  }
  sink.done();
  return true;
}

void FakeApiServer::handleEventPost(const httplib::Request& request, httplib::Response& response) {
  const std::string namespace_ = request.matches[1];
  json event = json::parse(request.body, nullptr, false);
  if (!event.is_object()) {
    return replyStatus(request, response, 400, "BadRequest",
                       "the body of the request was not a valid Event");
  }
  json& metadata = event["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  const std::string own_namespace = metadata.value("namespace", "");
  if (!own_namespace.empty() && own_namespace != namespace_) {
    return replyStatus(request, response, 400, "BadRequest",
                       "the namespace of the provided object does not match the namespace sent "
                       "on the request");
  }
  metadata["namespace"] = namespace_;
  const std::string name = nameOrGenerated(metadata);
  if (name.empty()) {
    return replyStatus(request, response, 422, "Invalid",
                       "Event \"\" is invalid: metadata.name: Required value: name or "
                       "generateName is required");
  }
  metadata["name"] = name;
  const std::string involved_namespace =
      event.value("involvedObject", json::object()).value("namespace", "");
  if (!involved_namespace.empty() && involved_namespace != namespace_) {
    const std::string invalid =
        absl::StrCat("Invalid value: \"", involved_namespace, "\": does not match event.namespace");
    return replyStatus(
        request, response, 422, "Invalid",
        absl::StrCat("Event \"", name, "\" is invalid: involvedObject.namespace: ", invalid),
        {{"name", name},
         {"kind", "Event"},
         {"causes",
          {{{"reason", "FieldValueInvalid"},
            {"message", invalid},
            {"field", "involvedObject.namespace"}}}}});
  }
  if (!insertEvent(event)) {
    return replyObjectStatus(request, response, 409, "AlreadyExists", "events", name,
                             absl::StrCat("events \"", name, "\" already exists"));
  }
  reply(request, response, 201, event);
}

void FakeApiServer::handleEventPatch(const httplib::Request& request, httplib::Response& response) {
  const std::optional<json> patch = mergePatchOf(request, response);
  if (!patch) return;
  const Target target = targetOf(request);
  replyFound(request, response, "events", target.name,
             patchStoredEvent(target.namespace_, target.name, *patch));
}

bool FakeApiServer::insertEvent(json& event) {
  json& metadata = event["metadata"];
  const std::string key =
      podKey(metadata["namespace"].get<std::string>(), metadata["name"].get<std::string>());
  std::lock_guard lock(mutex_);
  if (events_.count(key) != 0) return false;
  metadata["uid"] = newUid();
  metadata["resourceVersion"] = std::to_string(++resource_version_);
  metadata["creationTimestamp"] = nowRfc3339();
  if (!event.contains("eventTime")) event["eventTime"] = nullptr;
  events_[key] = event;
  return true;
}

std::optional<json> FakeApiServer::patchStoredEvent(const std::string& namespace_,
                                                    const std::string& name, const json& patch) {
  std::lock_guard lock(mutex_);
  auto it = events_.find(podKey(namespace_, name));
  if (it == events_.end()) return std::nullopt;
  // An Event has no list fields with merge keys: a strategic merge is a JSON merge here.
  it->second.merge_patch(patch);
  it->second["metadata"]["resourceVersion"] = std::to_string(++resource_version_);
  return it->second;
}

std::optional<json> FakeApiServer::storedPod(const std::string& namespace_,
                                             const std::string& name) const {
  std::lock_guard lock(mutex_);
  return findIn(pods_, namespace_, name);
}

std::optional<json> FakeApiServer::storedEvent(const std::string& namespace_,
                                               const std::string& name) const {
  std::lock_guard lock(mutex_);
  return findIn(events_, namespace_, name);
}

void FakeApiServer::appendLocked(LogEntry::Kind kind, const std::string& type,
                                 std::shared_ptr<const nlohmann::ordered_json> object,
                                 std::string line) {
  if (line.empty()) line = eventLine(type, *object);
  log_.push_back(
      LogEntry{next_seq_++, resource_version_, kind, std::move(object), std::move(line)});
  changed_.notify_all();
}

void FakeApiServer::writePodLocked(const std::string& type, json pod) {
  pod["metadata"]["resourceVersion"] = std::to_string(++resource_version_);
  auto stored = std::make_shared<const json>(std::move(pod));
  const std::string key = podKey((*stored)["metadata"]["namespace"].get<std::string>(),
                                 (*stored)["metadata"]["name"].get<std::string>());
  if (type == "DELETED") {
    pods_.erase(key);
  } else {
    pods_[key] = stored;
  }
  appendLocked(LogEntry::Kind::kPod, type, std::move(stored));
}

std::string FakeApiServer::createPod(const std::string& namespace_, const std::string& name,
                                     const std::string& node,
                                     const std::map<std::string, std::string>& annotations,
                                     bool host_network) {
  json pod = podTemplate();
  const std::string uid = newUid();
  json& metadata = pod["metadata"];
  metadata["name"] = name;
  metadata["namespace"] = namespace_;
  metadata["uid"] = uid;
  metadata["creationTimestamp"] = nowRfc3339();
  for (const auto& [key, value] : annotations) metadata["annotations"][key] = value;
  pod["spec"]["nodeName"] = node;
  if (host_network) pod["spec"]["hostNetwork"] = true;
  std::lock_guard lock(mutex_);
  if (pods_.count(podKey(namespace_, name)) != 0) return "";
  writePodLocked("ADDED", std::move(pod));
  return uid;
}

template <typename Edit>
void FakeApiServer::editPod(const std::string& namespace_, const std::string& name, Edit edit) {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(podKey(namespace_, name));
  if (it == pods_.end()) return;
  json pod = *it->second;
  edit(pod);
  writePodLocked("MODIFIED", std::move(pod));
}

void FakeApiServer::setAnnotation(const std::string& namespace_, const std::string& name,
                                  const std::string& key, const std::string& value) {
  editPod(namespace_, name, [&](json& pod) { pod["metadata"]["annotations"][key] = value; });
}

void FakeApiServer::removeAnnotation(const std::string& namespace_, const std::string& name,
                                     const std::string& key) {
  editPod(namespace_, name, [&](json& pod) { pod["metadata"]["annotations"].erase(key); });
}

void FakeApiServer::markTerminating(const std::string& namespace_, const std::string& name) {
  editPod(namespace_, name, [&](json& pod) {
    pod["metadata"]["deletionTimestamp"] = nowRfc3339();
    pod["metadata"]["deletionGracePeriodSeconds"] = 1;
  });
}

void FakeApiServer::deletePod(const std::string& namespace_, const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(podKey(namespace_, name));
  if (it == pods_.end()) return;
  writePodLocked("DELETED", *it->second);
}

uint64_t FakeApiServer::resourceVersion() const {
  std::lock_guard lock(mutex_);
  return resource_version_;
}

void FakeApiServer::compact() {
  std::lock_guard lock(mutex_);
  // Open watches already hold their place in the log; only new ones are refused.
  history_start_ = resource_version_;
  snapshots_.clear();
}

void FakeApiServer::sendBookmark() {
  std::lock_guard lock(mutex_);
  const json bookmark = {
      {"kind", "Pod"},
      {"apiVersion", "v1"},
      {"metadata",
       {{"resourceVersion", std::to_string(resource_version_)}, {"creationTimestamp", nullptr}}},
      {"spec", {{"containers", nullptr}}},
      {"status", json::object()}};
  appendLocked(LogEntry::Kind::kBookmark, "BOOKMARK", nullptr, eventLine("BOOKMARK", bookmark));
}

void FakeApiServer::dropWatches() {
  {
    std::lock_guard lock(mutex_);
    drop_up_to_watch_ = last_watch_id_;
  }
  changed_.notify_all();
}

void FakeApiServer::cutNextEvent() {
  std::lock_guard lock(mutex_);
  cut_up_to_watch_ = last_watch_id_;
  cut_from_seq_ = next_seq_;
}

void FakeApiServer::setChunkSize(size_t bytes) {
  std::lock_guard lock(mutex_);
  chunk_size_ = bytes;
}

void FakeApiServer::setWatchExpiry(WatchExpiry expiry) {
  std::lock_guard lock(mutex_);
  watch_expiry_ = expiry;
}

void FakeApiServer::setWatchCache(bool enabled) {
  std::lock_guard lock(mutex_);
  watch_cache_ = enabled;
}

void FakeApiServer::injectWatchLine(const std::string& line) {
  std::lock_guard lock(mutex_);
  appendLocked(LogEntry::Kind::kRaw, "", nullptr, line + "\n");
}

bool FakeApiServer::waitForOpenWatches(int count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return open_watches_ >= count; });
}

void FakeApiServer::setToken(const std::string& token) {
  std::lock_guard lock(mutex_);
  token_ = token;
}

void FakeApiServer::failNextRequests(int count, int http_status) {
  std::lock_guard lock(mutex_);
  fail_count_ = count;
  fail_status_ = http_status;
}

void FakeApiServer::failNextWatches(int count, int code) {
  std::lock_guard lock(mutex_);
  failed_watches_ = count;
  failed_watch_code_ = code;
}

void FakeApiServer::setStalled(bool stalled) {
  {
    std::lock_guard lock(mutex_);
    stalled_ = stalled;
  }
  changed_.notify_all();
}

int FakeApiServer::stalledRequests() const {
  std::lock_guard lock(mutex_);
  return stalled_ ? stalled_requests_ : 0;
}

std::vector<RecordedRequest> FakeApiServer::requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

std::vector<nlohmann::json> FakeApiServer::events() const {
  std::lock_guard lock(mutex_);
  std::vector<nlohmann::json> out;
  for (const auto& [key, event] : events_) out.emplace_back(event);
  return out;
}

std::optional<nlohmann::json> FakeApiServer::event(const std::string& namespace_,
                                                   const std::string& name) const {
  return plain(storedEvent(namespace_, name));
}

void FakeApiServer::expireEvent(const std::string& namespace_, const std::string& name) {
  std::lock_guard lock(mutex_);
  events_.erase(podKey(namespace_, name));
}

std::optional<nlohmann::json> FakeApiServer::pod(const std::string& namespace_,
                                                 const std::string& name) const {
  return plain(storedPod(namespace_, name));
}

void FakeApiServer::setLabel(const std::string& namespace_, const std::string& name,
                             const std::string& key, const std::string& value) {
  editPod(namespace_, name, [&](json& pod) { pod["metadata"]["labels"][key] = value; });
}

std::string FakeApiServer::createEvent(const std::string& namespace_, nlohmann::json event) {
  json stored = json::parse(event.dump());  // the field order the test wrote
  json& metadata = stored["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  const std::string name = nameOrGenerated(metadata);
  if (name.empty()) return "";
  metadata["name"] = name;
  metadata["namespace"] = namespace_;
  if (!stored.contains("kind")) stored["kind"] = "Event";
  if (!stored.contains("apiVersion")) stored["apiVersion"] = "v1";
  return insertEvent(stored) ? name : "";
}

bool FakeApiServer::patchEvent(const std::string& namespace_, const std::string& name,
                               const nlohmann::json& patch) {
  return patchStoredEvent(namespace_, name, json::parse(patch.dump())).has_value();
}

void FakeApiServer::forbid(const std::string& verb, const std::string& resource,
                           const std::string& user) {
  std::lock_guard lock(mutex_);
  forbidden_[verb + " " + resource] = user;
}

absl::Status FakeApiServer::writeKubeconfig(const std::string& path,
                                            const KubeconfigOptions& options) const {
  std::string token;
  {
    std::lock_guard lock(mutex_);
    token = token_;
  }
  std::ostringstream out;
  out << "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: " << url()
      << "\n";
  if (!options.ca_file.empty()) out << "    certificate-authority: " << options.ca_file << "\n";
  out << "users:\n- name: fake\n  user:";
  if (token.empty() && options.client_cert_file.empty()) out << " {}";
  out << "\n";
  if (!token.empty()) out << "    token: " << token << "\n";
  if (!options.client_cert_file.empty()) {
    out << "    client-certificate: " << options.client_cert_file << "\n"
        << "    client-key: " << options.client_key_file << "\n";
  }
  out << "contexts:\n- name: " << options.context << "\n  context:\n    cluster: fake\n"
      << "    user: fake\n";
  if (!options.namespace_.empty()) out << "    namespace: " << options.namespace_ << "\n";
  out << "current-context: " << options.context << "\n";
  std::ofstream file(path, std::ios::trunc);
  file << out.str();
  file.close();
  if (!file) return absl::InternalError("cannot write " + path);
  return absl::OkStatus();
}

}  // namespace fakeapi

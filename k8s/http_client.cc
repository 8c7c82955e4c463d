#include "k8s/http_client.h"

#include <curl/curl.h>
#include <glog/logging.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace k8s {
namespace {

// Above this, the body of a stream's error answer is cut: a Status is a few hundred bytes.
constexpr size_t kMaxErrorBody = 64 * 1024;

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlEasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct CurlListDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHeaders = std::unique_ptr<curl_slist, CurlListDeleter>;

void appendHeader(CurlHeaders& headers, const std::string& line) {
  curl_slist* extended = curl_slist_append(headers.get(), line.c_str());
  if (extended != nullptr) {
    (void)headers.release();
    headers.reset(extended);
  }
}

void setBlob(CURL* easy, CURLoption option, const std::string& pem) {
  curl_blob blob{const_cast<char*>(pem.data()), pem.size(), CURL_BLOB_COPY};
  curl_easy_setopt(easy, option, &blob);
}

absl::Status transportError(CURLcode code, const char* detail) {
  const std::string message =
      absl::StrCat(curl_easy_strerror(code), *detail != '\0' ? ": " : "", detail);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(message);
    case CURLE_WRITE_ERROR:
      return absl::AbortedError(message);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(message);
    default:
      return absl::UnavailableError(message);
  }
}

absl::StatusCode codeForHttpStatus(long status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 409:
      return absl::StatusCode::kAlreadyExists;
    case 410:
      return absl::StatusCode::kOutOfRange;  // Gone: the resourceVersion was compacted
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kUnknown;
  }
}

}  // namespace

void Cancellation::cancel() {
  cancelled_.store(true);
  std::lock_guard lock(mutex_);
  for (void* multi : waiting_) curl_multi_wakeup(static_cast<CURLM*>(multi));
}

void Cancellation::attach(void* multi_handle) {
  std::lock_guard lock(mutex_);
  waiting_.push_back(multi_handle);
}

void Cancellation::detach(void* multi_handle) {
  std::lock_guard lock(mutex_);
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), multi_handle), waiting_.end());
}

struct HttpClient::Handles {
  std::unique_ptr<CURL, CurlEasyDeleter> easy;
  std::unique_ptr<CURLM, CurlMultiDeleter> multi;
  char error_buffer[CURL_ERROR_SIZE] = {};
};

// One request's state, seen by curl's callbacks.
struct HttpClient::Call {
  std::string_view method;
  std::string url;
  std::string_view body;
  std::string_view content_type;
  std::chrono::milliseconds timeout{0};
  Cancellation* cancel = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;  // null: buffer the body
  CURL* easy = nullptr;
  HttpResponse response;
  bool reader_stopped = false;
  absl::Status reader_error;  // what on_data threw, caught before it could unwind through curl

  static size_t onWrite(char* data, size_t size, size_t count, void* self) {
    auto* call = static_cast<Call*>(self);
    const size_t bytes = size * count;
    long status = 0;
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
    const bool success = status >= 200 && status < 300;
    if (call->on_data == nullptr || !success) {
      const size_t room = kMaxErrorBody - std::min(kMaxErrorBody, call->response.body.size());
      if (call->on_data == nullptr || room > 0) {
        call->response.body.append(data, call->on_data == nullptr ? bytes : std::min(bytes, room));
      }
      return bytes;
    }
    bool more = false;
    try {
      more = (*call->on_data)(std::string_view(data, bytes));
    } catch (const std::exception& e) {
      call->reader_error = absl::InternalError(absl::StrCat("stream reader threw: ", e.what()));
    } catch (...) {
      call->reader_error = absl::InternalError("stream reader threw");
    }
    if (!more) {
      call->reader_stopped = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    return bytes;
  }

  static int onProgress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    auto* call = static_cast<Call*>(self);
    return call->cancel != nullptr && call->cancel->cancelled() ? 1 : 0;
  }
};

HttpClient::HttpClient(const ClusterConfig& config) : HttpClient(config, Options{}) {}

HttpClient::HttpClient(const ClusterConfig& config, Options options)
    : server_(config.server),
      options_(std::move(options)),
      token_(config.token, config.token_file, options_.token_refresh),
      handles_(std::make_unique<Handles>()) {
  initCurlOnce();
  handles_->easy.reset(curl_easy_init());
  handles_->multi.reset(curl_multi_init());
  CHECK(handles_->easy && handles_->multi) << "libcurl could not allocate a handle";
  CURL* easy = handles_->easy.get();
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, handles_->error_buffer);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPIDLE, static_cast<long>(options_.keepalive_idle.count()));
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPINTVL,
                   static_cast<long>(options_.keepalive_interval.count()));
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, &Call::onProgress);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Call::onWrite);
  if (config.insecure_skip_tls_verify) {
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config.ca_data.empty() || !config.ca_file.empty()) {
    // The configured CA alone, as client-go: curl's built-in bundle and CA directory
    // (/etc/ssl/certs on Debian and Ubuntu) would let any public CA vouch for the API server.
    curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
    if (!config.ca_data.empty()) {
      curl_easy_setopt(easy, CURLOPT_CAINFO, nullptr);
      setBlob(easy, CURLOPT_CAINFO_BLOB, config.ca_data);
    } else {
      curl_easy_setopt(easy, CURLOPT_CAINFO, config.ca_file.c_str());
    }
  }
  if (!config.client_cert_data.empty()) {
    setBlob(easy, CURLOPT_SSLCERT_BLOB, config.client_cert_data);
  } else if (!config.client_cert_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLCERT, config.client_cert_file.c_str());
  }
  if (!config.client_key_data.empty()) {
    setBlob(easy, CURLOPT_SSLKEY_BLOB, config.client_key_data);
  } else if (!config.client_key_file.empty()) {
    curl_easy_setopt(easy, CURLOPT_SSLKEY, config.client_key_file.c_str());
  }
}

HttpClient::~HttpClient() = default;

absl::StatusOr<HttpResponse> HttpClient::perform(Call& call) {
  CURL* easy = handles_->easy.get();
  CURLM* multi = handles_->multi.get();
  call.easy = easy;
  handles_->error_buffer[0] = '\0';

  CurlHeaders headers;
  appendHeader(headers, "Accept: application/json");
  if (const std::string token = token_.get(); !token.empty()) {
    appendHeader(headers, "Authorization: Bearer " + token);
  }
  if (!call.content_type.empty()) {
    appendHeader(headers, absl::StrCat("Content-Type: ", std::string(call.content_type)));
  }
  curl_easy_setopt(easy, CURLOPT_URL, call.url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
  if (call.method == "GET") {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, nullptr);
  } else {
    const std::string method(call.method);
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());  // curl copies it
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(call.body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, call.body.empty() ? "" : call.body.data());
  }
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(call.timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &call);
  curl_easy_setopt(easy, CURLOPT_XFERINFODATA, &call);

  curl_multi_add_handle(multi, easy);
  if (call.cancel != nullptr) call.cancel->attach(multi);
  CURLMcode multi_code = CURLM_OK;
  for (;;) {
    int running = 0;
    multi_code = curl_multi_perform(multi, &running);
    if (multi_code != CURLM_OK || running == 0) break;
    if (call.cancel != nullptr && call.cancel->cancelled()) break;
    // Woken by data, by curl's own timers, or at once by Cancellation::cancel().
    multi_code =
        curl_multi_poll(multi, nullptr, 0, static_cast<int>(options_.idle_poll.count()), nullptr);
    if (multi_code != CURLM_OK) break;
  }
  CURLcode result = CURLE_OK;
  int queued = 0;
  while (CURLMsg* message = curl_multi_info_read(multi, &queued)) {
    if (message->msg == CURLMSG_DONE && message->easy_handle == easy) result = message->data.result;
  }
  if (call.cancel != nullptr) call.cancel->detach(multi);
  curl_multi_remove_handle(multi, easy);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);

  if (call.cancel != nullptr && call.cancel->cancelled()) {
    return absl::CancelledError("cancelled");
  }
  if (multi_code != CURLM_OK) {
    return absl::InternalError(absl::StrCat("libcurl: ", curl_multi_strerror(multi_code)));
  }
  if (result != CURLE_OK) {
    if (call.reader_stopped) {
      return call.reader_error.ok() ? absl::AbortedError("stream stopped by its reader")
                                    : call.reader_error;
    }
    return transportError(result, handles_->error_buffer);
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &call.response.status);
  if (call.response.status == 401) token_.invalidate();
  return std::move(call.response);
}

absl::StatusOr<HttpResponse> HttpClient::request(std::string_view method, std::string_view path,
                                                 std::string_view body,
                                                 std::string_view content_type,
                                                 Cancellation* cancel) {
  absl::StatusOr<HttpResponse> response;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Call call;
    call.method = method;
    call.url = absl::StrCat(server_, std::string(path));
    call.body = body;
    call.content_type = content_type;
    call.timeout = options_.request_timeout;
    call.cancel = cancel;
    response = perform(call);
    // A rotated token: the 401 made perform() mark it stale, so the retry reads the file.
    if (!response.ok() || response->status != 401 || !token_.rereadable()) break;
  }
  return response;
}

absl::StatusOr<HttpResponse> HttpClient::stream(
    std::string_view path, const std::function<bool(std::string_view)>& on_data,
    std::chrono::milliseconds timeout, Cancellation* cancel) {
  Call call;
  call.method = "GET";
  call.url = absl::StrCat(server_, std::string(path));
  call.timeout = timeout;
  call.cancel = cancel;
  call.on_data = &on_data;
  return perform(call);
}

absl::Status apiError(const HttpResponse& response) {
  if (response.status >= 200 && response.status < 300) return absl::OkStatus();
  std::string message;
  const nlohmann::json body =
      nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  // Whatever answered may not be an API server: a field of another type is no field.
  const auto text = [&body](const char* key) {
    const auto it = body.find(key);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (text("kind") == "Status" && !(text("reason").empty() && text("message").empty())) {
    message = absl::StrCat(text("reason"), ": ", text("message"));
  } else {
    message = response.body.substr(0, 200);
  }
  return absl::Status(codeForHttpStatus(response.status),
                      absl::StrCat("HTTP ", response.status, " ", message));
}

std::string urlEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size() * 3);
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

}  // namespace k8s

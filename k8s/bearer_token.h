#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

namespace k8s {

// The bearer token of every request. A token file is re-read when the last read is older than
// the refresh interval and after the API server answered 401, because the kubelet rotates
// projected service-account tokens in place (client-go re-reads them every minute too).
// Thread-safe.
class BearerToken {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  // `token_file` wins when both are given; `token` is then only the value before the first read.
  BearerToken(std::string token, std::string token_file,
              std::chrono::steady_clock::duration refresh_interval = std::chrono::minutes(1),
              Clock now = nullptr);

  // The current token; empty when there is none.
  std::string get();
  // The server refused the token: read the file again on the next get().
  void invalidate();
  // Whether invalidate() can bring a different token: only a file can change.
  bool rereadable() const { return !token_file_.empty(); }

 private:
  void readFileLocked();

  const std::string token_file_;
  const std::chrono::steady_clock::duration refresh_interval_;
  const Clock now_;
  std::mutex mutex_;
  std::string token_;
  bool stale_ = true;
  std::chrono::steady_clock::time_point read_at_{};
};

}  // namespace k8s

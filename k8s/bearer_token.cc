#include "k8s/bearer_token.h"

#include <glog/logging.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"

namespace k8s {

BearerToken::BearerToken(std::string token, std::string token_file,
                         std::chrono::steady_clock::duration refresh_interval, Clock now)
    : token_file_(std::move(token_file)),
      refresh_interval_(refresh_interval),
      now_(now ? std::move(now) : Clock(&std::chrono::steady_clock::now)),
      token_(std::move(token)) {}

std::string BearerToken::get() {
  std::lock_guard lock(mutex_);
  if (!token_file_.empty() && (stale_ || now_() - read_at_ >= refresh_interval_)) {
    readFileLocked();
  }
  return token_;
}

void BearerToken::invalidate() {
  std::lock_guard lock(mutex_);
  stale_ = true;
}

void BearerToken::readFileLocked() {
  read_at_ = now_();
  stale_ = false;
  std::ifstream in(token_file_);
  std::stringstream contents;
  contents << in.rdbuf();
  if (!in) {
    // Keep the token we had: a rotation replaces the file atomically, so a failed read is
    // transient, and the old token may still be valid for a while.
    LOG(WARNING) << "cannot read bearer token file " << token_file_ << "; keeping the last token";
    return;
  }
  std::string token(absl::StripAsciiWhitespace(contents.str()));
  if (token != token_) VLOG(1) << "bearer token re-read from " << token_file_;
  token_ = std::move(token);
}

}  // namespace k8s

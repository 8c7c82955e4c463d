#include "tests/lab/command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_join.h"

extern char** environ;

namespace lab {
namespace {

// Closes on scope exit, so that no error path leaks a pipe end.
struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

absl::StatusOr<CommandResult> runCommand(const std::vector<std::string>& argv,
                                         std::chrono::milliseconds timeout,
                                         const std::optional<std::vector<std::string>>& env) {
  if (argv.empty()) return absl::InvalidArgumentError("runCommand: empty argv");
  const std::string shown = absl::StrJoin(argv, " ");
  Fd out_read, out_write, err_read, err_write;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return absl::InternalError("pipe: " + std::string(strerror(errno)));
  out_read.fd = p[0];
  out_write.fd = p[1];
  if (::pipe2(p, O_CLOEXEC) != 0)
    return absl::InternalError("pipe: " + std::string(strerror(errno)));
  err_read.fd = p[0];
  err_write.fd = p[1];

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_write.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_write.fd, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> child_env;
  if (env) {
    for (const auto& e : *env) child_env.push_back(const_cast<char*>(e.c_str()));
    child_env.push_back(nullptr);
  }
  pid_t pid = 0;
  const int rc =
      posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), env ? child_env.data() : environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return absl::NotFoundError("cannot run " + shown + ": " + strerror(rc));
  out_write.reset();
  err_write.reset();

  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (out_read.fd >= 0 || err_read.fd >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{out_read.fd, POLLIN, 0}, {err_read.fd, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (auto [pfd, fd, sink] : {std::tuple{&fds[0], &out_read, &result.out},
                                 std::tuple{&fds[1], &err_read, &result.err}}) {
      if (fd->fd < 0 || pfd->revents == 0) continue;
      char buf[4096];
      const ssize_t n = ::read(fd->fd, buf, sizeof buf);
      if (n > 0) {
        sink->append(buf, n);
      } else if (n == 0 || errno != EINTR) {
        fd->reset();
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return absl::DeadlineExceededError(shown + " did not finish within " +
                                       std::to_string(timeout.count()) + "ms");
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

absl::StatusOr<std::string> runChecked(const std::vector<std::string>& argv,
                                       std::chrono::milliseconds timeout) {
  auto result = runCommand(argv, timeout);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrJoin(argv, " ") + " exited " +
                               std::to_string(result->exit_code) + ": " + result->err);
  }
  return std::move(result->out);
}

}  // namespace lab

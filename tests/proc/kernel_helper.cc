// proc_kernel_helper: runs proc/'s code in a process whose seccomp filter makes this kernel
// look older, for kernel_features_test.cc.
//
//   proc_kernel_helper [--deny=WHAT]... [--nofile=N] MODE [ARGS]
//
// --deny, before anything else runs (PR_SET_NO_NEW_PRIVS, so no root needed):
//   close_range          close_range is ENOSYS (Linux before 5.9)
//   close_range_cloexec  close_range with CLOSE_RANGE_CLOEXEC is EINVAL (5.9, 5.10)
//   open_directory       openat with O_DIRECTORY is ENOENT (no /proc/self/fd to list)
//   pidfd_open           pidfd_open is ENOSYS (before 5.3)
//   pidfd_send_signal    pidfd_send_signal is ENOSYS (before 5.1)
//   waitid_pidfd         waitid(P_PIDFD, ...) is ENOSYS (EINVAL before 5.4)
// --nofile sets RLIMIT_NOFILE's soft limit to N first (at most the hard limit): the tests
// lower it, so that closing every number up to it takes the same time everywhere.
//
// MODEs; each prints its findings to stderr, one per line, and exits 0 when they are as
// expected:
//   features             the probe and checkKernelFloor(); exits 0 when the floor is met
//   spawn                opens descriptors without O_CLOEXEC, then spawnChild(this list-fds);
//                        exits 0 when the child had only 0, 1 and 2 (and an exec failure is
//                        still reported, through the status pipe the child kept)
//   launch NETNS_PATH    the same through NetnsLauncher, into the network namespace
//   time N               N runs of /bin/true through spawnChild: the mean, in microseconds
//   list-fds             prints its own open descriptors: "fds: 0 1 2"
//   exec PROGRAM [ARGS]  runs PROGRAM under the filter (the controller's start-up)
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proc/kernel_features.h"
#include "proc/netns_launcher.h"
#include "proc/spawn.h"

namespace {

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "proc_kernel_helper: only x86_64 and aarch64"
#endif

constexpr uint32_t kArgLow(int i) {  // the low 32 bits of argument i (little-endian)
  return offsetof(seccomp_data, args) + 8 * i;
}

struct Rule {
  long number;
  int error;
  int arg = -1;  // when >= 0: only if (args[arg] & mask) == value
  uint32_t mask = 0;
  uint32_t value = 0;
};

bool ruleFor(const std::string& what, Rule* rule) {
  if (what == "close_range") {
    *rule = {SYS_close_range, ENOSYS};
  } else if (what == "close_range_cloexec") {
    *rule = {SYS_close_range, EINVAL, 2, CLOSE_RANGE_CLOEXEC, CLOSE_RANGE_CLOEXEC};
  } else if (what == "open_directory") {
    *rule = {SYS_openat, ENOENT, 2, O_DIRECTORY, O_DIRECTORY};
  } else if (what == "pidfd_open") {
    *rule = {SYS_pidfd_open, ENOSYS};
  } else if (what == "pidfd_send_signal") {
    *rule = {SYS_pidfd_send_signal, ENOSYS};
  } else if (what == "waitid_pidfd") {
    *rule = {SYS_waitid, ENOSYS, 0, ~0U, P_PIDFD};
  } else {
    return false;
  }
  return true;
}

// One block per rule, each reloading the system call number; any other architecture is killed
// (its numbers mean other calls).
bool installSeccomp(const std::vector<Rule>& rules) {
  std::vector<sock_filter> program = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  };
  for (const Rule& rule : rules) {
    const uint32_t refuse = SECCOMP_RET_ERRNO | static_cast<uint32_t>(rule.error);
    program.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    if (rule.arg < 0) {
      program.push_back(
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(rule.number), 0, 1));
      program.push_back(BPF_STMT(BPF_RET | BPF_K, refuse));
    } else {
      program.push_back(
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(rule.number), 0, 4));
      program.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArgLow(rule.arg)));
      program.push_back(BPF_STMT(BPF_ALU | BPF_AND | BPF_K, rule.mask));
      program.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, rule.value, 0, 1));
      program.push_back(BPF_STMT(BPF_RET | BPF_K, refuse));
    }
  }
  program.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  const sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0;
}

void say(const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }

std::string selfPath() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "";
}

// Without O_DIRECTORY (which --deny=open_directory refuses) and without opendir.
int listFds() {
  const int dir = ::open("/proc/self/fd", O_RDONLY | O_CLOEXEC);
  if (dir < 0) {
    say(absl::StrCat("open /proc/self/fd: ", std::strerror(errno)));
    return 1;
  }
  std::vector<std::string> fds;
  alignas(8) char buffer[4096];
  long n;
  while ((n = ::syscall(SYS_getdents64, dir, buffer, sizeof(buffer))) > 0) {
    for (long offset = 0; offset < n;) {
      const char* name = buffer + offset + 19;  // linux_dirent64.d_name
      offset += *reinterpret_cast<const unsigned short*>(buffer + offset + 16);
      if (name[0] != '.' && std::atoi(name) != dir) fds.push_back(name);
    }
  }
  say(absl::StrCat("fds: ", absl::StrJoin(fds, " ")));
  return 0;
}

// Descriptors a careless library leaves inheritable: files, a pipe, a socket, one far up.
std::vector<int> openInheritable() {
  std::vector<int> fds;
  for (int i = 0; i < 3; ++i) fds.push_back(::open("/dev/null", O_RDONLY));
  int pipe_fds[2];
  if (::pipe(pipe_fds) == 0) fds.insert(fds.end(), {pipe_fds[0], pipe_fds[1]});
  fds.push_back(::socket(AF_UNIX, SOCK_STREAM, 0));
  rlimit nofile = {};
  ::getrlimit(RLIMIT_NOFILE, &nofile);
  fds.push_back(::fcntl(fds.front(), F_DUPFD, static_cast<int>(nofile.rlim_cur) - 10));
  return fds;
}

// The last line of the child's stderr, "fds: ...", must list only 0, 1 and 2.
bool onlyStdio(const std::string& tail) {
  const size_t line = tail.rfind("fds: ");
  const std::string fds = line == std::string::npos ? tail : tail.substr(line);
  say(absl::StrCat("child ", fds));
  return fds == "fds: 0 1 2";
}

bool execFailureStillReported() {
  auto failed = proc::spawnChild(proc::SpawnSpec{{"/nonexistent/program"}, {}});
  const std::string message = failed.ok() ? "exec'd?" : std::string(failed.status().message());
  say(absl::StrCat("exec failure: ", message));
  return message.find("execve") != std::string::npos;
}

int spawnMode() {
  const std::vector<int> inheritable = openInheritable();
  say(absl::StrCat("parent opened without O_CLOEXEC: ", absl::StrJoin(inheritable, " ")));
  auto done = proc::runToCompletion(proc::SpawnSpec{{selfPath(), "list-fds"}, {}},
                                    std::chrono::seconds(20));
  if (!done.ok()) {
    say(absl::StrCat("spawn: ", done.status().ToString()));
    return 1;
  }
  const bool clean = onlyStdio(done->stderr_tail);
  return clean && execFailureStillReported() ? 0 : 1;
}

int launchMode(const std::string& netns_path) {
  const std::vector<int> inheritable = openInheritable();
  say(absl::StrCat("parent opened without O_CLOEXEC: ", absl::StrJoin(inheritable, " ")));
  auto launcher = proc::NetnsLauncher::create({});
  if (!launcher.ok()) {
    say(launcher.status().ToString());
    return 1;
  }
  std::promise<proc::ProcessExit> exited;
  (*launcher)->setExitHandler([&exited](proc::ProcessExit exit) { exited.set_value(exit); });
  auto started =
      (*launcher)->start(proc::LaunchSpec{"uid-1", {selfPath(), "list-fds"}, netns_path, 0, ""});
  if (!started.ok()) {
    say(absl::StrCat("start: ", started.status().ToString()));
    return 1;
  }
  auto exit = exited.get_future();
  if (exit.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    say("no exit within 20 s");
    return 1;
  }
  const proc::ProcessExit result = exit.get();
  say(absl::StrCat("launched child ", result.status.describe(), result.start_error));
  return result.status.exit_code == 0 && onlyStdio(result.stderr_tail) ? 0 : 1;
}

int timeMode(int runs) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) {
    auto done = proc::runToCompletion(proc::SpawnSpec{{"/bin/true"}, {}}, std::chrono::seconds(20));
    if (!done.ok() || done->status.exit_code != 0) return 1;
  }
  const auto spent = std::chrono::steady_clock::now() - start;
  say(absl::StrCat("mean us: ",
                   std::chrono::duration_cast<std::chrono::microseconds>(spent).count() / runs));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<Rule> rules;
  int arg = 1;
  for (; arg < argc && std::strncmp(argv[arg], "--", 2) == 0; ++arg) {
    const std::string flag = argv[arg];
    Rule rule;
    if (flag.rfind("--deny=", 0) == 0 && ruleFor(flag.substr(7), &rule)) {
      rules.push_back(rule);
    } else if (flag.rfind("--nofile=", 0) == 0) {
      const rlim_t n = std::strtoul(flag.c_str() + 9, nullptr, 10);
      rlimit nofile = {};
      ::getrlimit(RLIMIT_NOFILE, &nofile);
      nofile.rlim_cur = n;
      if (::setrlimit(RLIMIT_NOFILE, &nofile) != 0) {
        say(absl::StrCat("setrlimit: ", std::strerror(errno)));
        return 2;
      }
    } else {
      say(absl::StrCat("unknown flag ", flag));
      return 2;
    }
  }
  if (!rules.empty() && !installSeccomp(rules)) {
    say(absl::StrCat("seccomp: ", std::strerror(errno)));
    return 2;
  }
  const std::string mode = arg < argc ? argv[arg] : "";
  if (mode == "list-fds") return listFds();
  if (mode == "exec" && arg + 1 < argc) {
    // Another program under the same filter: the controller's own start-up on an "older" kernel.
    ::execv(argv[arg + 1], argv + arg + 1);
    say(absl::StrCat("exec ", argv[arg + 1], ": ", std::strerror(errno)));
    return 127;
  }
  const proc::KernelFeatures& features = proc::kernelFeatures();
  say(features.describe());
  if (mode == "features") {
    const absl::Status floor = proc::checkKernelFloor();
    say(floor.ok() ? "floor: ok" : absl::StrCat("floor: ", floor.message()));
    return floor.ok() ? 0 : 1;
  }
  if (mode == "spawn") return spawnMode();
  if (mode == "launch" && arg + 1 < argc) return launchMode(argv[arg + 1]);
  if (mode == "time" && arg + 1 < argc) return timeMode(std::atoi(argv[arg + 1]));
  say("usage: proc_kernel_helper [--deny=WHAT]... [--nofile=N] "
      "features|spawn|launch NETNS_PATH|time N|list-fds|exec PROGRAM [ARGS]");
  return 2;
}

#include "proc/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace proc {
namespace {

// `fd` is what opening `path` gave (invalid: the open failed, errno says why).
absl::StatusOr<UniqueFd> checkNetworkNamespace(UniqueFd fd, const std::string& path) {
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  struct statfs fs = {};
  if (::fstatfs(fd.get(), &fs) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("fstatfs ", path));
  }
  if (static_cast<unsigned long>(fs.f_type) != NSFS_MAGIC) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a namespace (not on nsfs; is its mount missing?)"));
  }
  const int type = ::ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) return absl::ErrnoToStatus(errno, absl::StrCat("ioctl NS_GET_NSTYPE ", path));
  if (type != CLONE_NEWNET) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is a namespace, but not a network namespace"));
  }
  return fd;
}

absl::StatusOr<std::string> readFileAt(int dir_fd, const char* name, const std::string& path) {
  UniqueFd fd(::openat(dir_fd, name, O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  std::string content;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n > 0) {
      content.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      return content;
    } else if (errno != EINTR) {
      return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
    }
  }
}

// /proc/<pid>/cgroup: one "hierarchy-ID:controllers:path" line per hierarchy.
bool cgroupPathNames(absl::string_view proc_cgroup, absl::string_view sandbox_id) {
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n')) {
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() == 3 && absl::StrContains(fields[2], sandbox_id)) return true;
  }
  return false;
}

// The fallback, taken only when the pid is the sandbox's own process. Without hostPID, /proc
// shows the controller's pid namespace, where the host's pid of a sandbox names some other
// process, perhaps one of our own tcpdumps sitting in another Pod's network namespace. The
// pause process lives in a cgroup named after the sandbox ID, with the cgroupfs driver
// (.../pod<uid>/<id>) and the systemd one (.../cri-containerd-<id>.scope) alike. Both reads go
// through one descriptor of /proc/<pid>, which stays bound to that process even if the pid is
// reused meanwhile.
absl::StatusOr<OpenedNetns> openSandboxProcessNetns(int64_t pid, const std::string& sandbox_id) {
  if (sandbox_id.empty()) {
    return absl::InvalidArgumentError("the runtime reported no sandbox ID to check its pid by");
  }
  const std::string proc_dir = absl::StrCat("/proc/", pid);
  UniqueFd dir(::open(proc_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", proc_dir));
  auto cgroups = readFileAt(dir.get(), "cgroup", proc_dir + "/cgroup");
  if (!cgroups.ok()) return cgroups.status();
  if (!cgroupPathNames(*cgroups, sandbox_id)) {
    return absl::FailedPreconditionError(
        absl::StrCat(proc_dir, " is not sandbox ", sandbox_id,
                     "'s process (its cgroups do not name the sandbox): without hostPID, that "
                     "pid names a process of the controller's own pid namespace"));
  }
  const std::string path = proc_dir + "/ns/net";
  auto fd =
      checkNetworkNamespace(UniqueFd(::openat(dir.get(), "ns/net", O_RDONLY | O_CLOEXEC)), path);
  if (!fd.ok()) return fd.status();
  return OpenedNetns{std::move(*fd), path};
}

}  // namespace

absl::StatusOr<UniqueFd> openNetworkNamespace(const std::string& path) {
  return checkNetworkNamespace(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), path);
}

absl::StatusOr<OpenedNetns> openSandboxNetns(const std::string& netns_path, int64_t sandbox_pid,
                                             const std::string& sandbox_id) {
  absl::Status primary = absl::InvalidArgumentError("the runtime reported no netns path");
  if (!netns_path.empty()) {
    auto fd = openNetworkNamespace(netns_path);
    if (fd.ok()) return OpenedNetns{std::move(*fd), netns_path};
    primary = fd.status();
  }
  std::string fallback_why = "the runtime reported no sandbox pid";
  if (sandbox_pid > 0) {
    auto opened = openSandboxProcessNetns(sandbox_pid, sandbox_id);
    if (opened.ok()) return opened;
    fallback_why = std::string(opened.status().message());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot enter the Pod's network namespace: ", primary.message(), "; fallback: ", fallback_why,
      ". Mount the host's /var/run/netns into the controller (hostPath, mountPropagation: "
      "HostToContainer), or run it with hostPID so that /proc/<pid>/ns/net is visible"));
}

}  // namespace proc

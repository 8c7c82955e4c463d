#include "capture/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace capture {

absl::StatusOr<UniqueFd> openNetworkNamespace(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
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

absl::StatusOr<OpenedNetns> openSandboxNetns(const std::string& netns_path, int64_t sandbox_pid) {
  absl::Status primary = absl::InvalidArgumentError("the runtime reported no netns path");
  if (!netns_path.empty()) {
    auto fd = openNetworkNamespace(netns_path);
    if (fd.ok()) return OpenedNetns{std::move(*fd), netns_path};
    primary = fd.status();
  }
  std::string fallback_why = "the runtime reported no sandbox pid";
  if (sandbox_pid > 0) {
    const std::string proc_path = absl::StrCat("/proc/", sandbox_pid, "/ns/net");
    auto fd = openNetworkNamespace(proc_path);
    if (fd.ok()) return OpenedNetns{std::move(*fd), proc_path};
    fallback_why = std::string(fd.status().message());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot enter the Pod's network namespace: ", primary.message(), "; fallback: ", fallback_why,
      ". Mount the host's /var/run/netns into the controller (hostPath, mountPropagation: "
      "HostToContainer), or run it with hostPID so that /proc/<pid>/ns/net is visible"));
}

}  // namespace capture

#include "tests/lab/containerd_lab.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/lab/command.h"
#include "tests/support/files.h"
#include "tests/support/proc.h"
#include "tests/support/wait.h"

extern char** environ;

namespace lab {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kLabRoot[] = "/run/capture-controller-lab";
constexpr char kImageCache[] = "/var/tmp/capture-controller-lab";
constexpr char kPauseRepository[] = "capture-controller.test/pause";
constexpr int kMaxSlots = 32;
constexpr char kIpForward[] = "/proc/sys/net/ipv4/ip_forward";
// Polling interval while waiting on a condition with a deadline.
constexpr milliseconds kPoll{20};

std::string slotDir(int slot) { return std::string(kLabRoot) + "/slot-" + std::to_string(slot); }
// Also the name of the lab's top cgroup: one name to look for.
std::string slotBridge(int slot) { return "cclab" + std::to_string(slot); }
std::string slotSubnet(int slot) { return "10.251." + std::to_string(slot) + ".0/24"; }
std::string slotGateway(int slot) { return "10.251." + std::to_string(slot) + ".1"; }
std::string socketOf(const std::string& dir) { return dir + "/containerd.sock"; }

using testsupport::readFile;

absl::Status writeFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError("cannot write " + path);
  return absl::OkStatus();
}

std::string tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

// Open fd holding an exclusive flock on `path`; if another open file holds it: -1, or with
// `wait`, the fd once that file lets go.
int tryLock(const std::string& path, bool wait = false) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  if (::flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int lockSlot(int slot) { return tryLock(slotDir(slot) + ".lock"); }

bool slotLive(int slot) {
  if (!fs::exists(slotDir(slot) + ".lock")) return false;
  const int fd = lockSlot(slot);
  if (fd < 0) return true;
  ::close(fd);
  return false;
}

std::vector<std::string> cmdlineOf(pid_t pid) {
  const std::string raw = readFile("/proc/" + std::to_string(pid) + "/cmdline");
  return absl::StrSplit(raw, '\0', absl::SkipEmpty());
}

// Waits until `pid` is gone, reaping it if it is our child.
bool waitExited(pid_t pid, milliseconds limit) {
  return testsupport::waitUntil(
      [pid] {
        const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        return r == pid || (r < 0 && errno == ECHILD && !testsupport::processLives(pid));
      },
      limit, kPoll);
}

void stopProcess(pid_t pid, const char* what) {
  if (!testsupport::processLives(pid)) {
    ::waitpid(pid, nullptr, WNOHANG);
    return;
  }
  ::kill(pid, SIGTERM);
  if (waitExited(pid, seconds(10))) return;
  LOG(WARNING) << what << " " << pid << " ignored SIGTERM for 10s; SIGKILL";
  ::kill(pid, SIGKILL);
  waitExited(pid, seconds(5));
}

// The containerd recorded in `dir`, if that process is still running with our config.
pid_t runningContainerd(const std::string& dir) {
  const pid_t pid = std::atoi(readFile(dir + "/containerd.pid").c_str());
  if (!testsupport::processLives(pid)) return 0;
  for (const auto& arg : cmdlineOf(pid)) {
    if (arg == dir + "/config.toml") return pid;
  }
  return 0;
}

// The containerd binary a lab runs, recorded in its directory so that reaping a dead lab restarts
// the same one: an absolute path (or, from an older lab, none: "containerd" on PATH).
std::string binaryFileOf(const std::string& dir) { return dir + "/containerd.binary"; }

std::string containerdBinaryOf(const std::string& dir) {
  std::string binary = readFile(binaryFileOf(dir));
  while (!binary.empty() && binary.back() == '\n') binary.pop_back();
  return binary.empty() ? "containerd" : binary;
}

absl::StatusOr<pid_t> spawnContainerd(const std::string& dir) {
  const std::string binary = containerdBinaryOf(dir);
  // Another version's containerd finds its own shim first: its directory, unless already on
  // PATH (the machine's), leads PATH; runc, on the rest of PATH, is the machine's.
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "PATH=", 5) != 0) env_storage.emplace_back(*e);
  }
  const char* path = std::getenv("PATH");
  std::string new_path =
      path != nullptr ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  const std::string bin_dir = fs::path(binary).parent_path().string();
  if (!bin_dir.empty() && (":" + new_path + ":").find(":" + bin_dir + ":") == std::string::npos) {
    new_path = bin_dir + ":" + new_path;
  }
  env_storage.push_back("PATH=" + new_path);
  std::vector<char*> envp;
  for (auto& e : env_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, (dir + "/containerd.log").c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own session: a terminal's Ctrl-C reaches the test, whose teardown then stops containerd
  // after removing the sandboxes, rather than containerd dying first.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  const std::string config = dir + "/config.toml";
  const char* argv[] = {binary.c_str(), "--config", config.c_str(), nullptr};
  pid_t pid = 0;
  const int rc =
      posix_spawnp(&pid, argv[0], &actions, &attr, const_cast<char* const*>(argv), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::NotFoundError("cannot run " + binary + ": " + strerror(rc));
  }
  if (auto s = writeFile(dir + "/containerd.pid", std::to_string(pid)); !s.ok()) return s;
  return pid;
}

absl::Status waitForSocket(const std::string& dir, pid_t pid, milliseconds limit) {
  // A containerd that died opens nothing: stop waiting at once.
  testsupport::waitUntil(
      [&] { return fs::exists(socketOf(dir)) || !testsupport::processLives(pid); }, limit, kPoll);
  if (fs::exists(socketOf(dir))) return absl::OkStatus();
  return absl::UnavailableError("containerd did not open " + socketOf(dir) + "; its log:\n" +
                                tail(readFile(dir + "/containerd.log")));
}

absl::Status removeAll(KubeletClient& client) {
  auto list = client.listPodSandbox();
  if (!list.ok()) return list.status();
  absl::Status result;
  for (const auto& sandbox : list->items()) {
    // Stop first, as the kubelet does: it tears down the network (CNI DEL, netns).
    if (auto s = client.stopPodSandbox(sandbox.id()); !s.ok()) result.Update(s);
    if (auto s = client.removePodSandbox(sandbox.id()); !s.ok()) result.Update(s);
  }
  return result;
}

// Shims outlive containerd by design; ours carry our socket on their command line.
void killShims(const std::string& socket) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto args = cmdlineOf(std::stoi(name));
    for (size_t i = 0; i + 1 < args.size(); ++i) {
      if (args[i] == "-address" && args[i + 1] == socket) {
        LOG(WARNING) << "killing leftover shim " << name;
        ::kill(std::stoi(name), SIGKILL);
        break;
      }
    }
  }
}

// The lab's cgroup in every hierarchy: cgroup v1 has one per controller, v2 one.
std::vector<fs::path> labCgroups(const std::string& name) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (fs::is_directory("/sys/fs/cgroup/" + name, ec)) out.push_back("/sys/fs/cgroup/" + name);
  for (const auto& hierarchy : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (hierarchy.is_symlink(ec)) continue;
    const fs::path p = hierarchy.path() / name;
    if (fs::is_directory(p, ec)) out.push_back(p);
  }
  return out;
}

// Kills what is left in the lab's cgroups (pause processes of a shim killed above), then
// removes them, deepest first, retrying while the killed processes exit.
void removeCgroups(const std::string& name) {
  const auto removedAll = [&name] {
    bool empty = true;
    for (const auto& top : labCgroups(name)) {
      std::vector<fs::path> dirs{top};
      std::error_code ec;
      for (const auto& e : fs::recursive_directory_iterator(top, ec)) {
        if (e.is_directory(ec)) dirs.push_back(e.path());
      }
      std::sort(dirs.begin(), dirs.end(),
                [](const auto& a, const auto& b) { return a.string().size() > b.string().size(); });
      for (const auto& d : dirs) {
        std::istringstream procs(readFile((d / "cgroup.procs").string()));
        for (pid_t pid; procs >> pid;) ::kill(pid, SIGKILL);
        if (::rmdir(d.c_str()) != 0 && errno != ENOENT) empty = false;
      }
    }
    return empty;
  };
  if (!testsupport::waitUntil(removedAll, seconds(5), kPoll)) {
    LOG(WARNING) << "could not remove cgroups named " << name;
  }
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescapeMountPath(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

void unmountUnder(const std::string& dir) {
  std::vector<std::string> mounts;
  std::istringstream in(readFile("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 5) continue;
    const std::string point = unescapeMountPath(fields[4]);
    if (point.rfind(dir + "/", 0) == 0) mounts.push_back(point);
  }
  std::sort(mounts.begin(), mounts.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) {
    if (::umount2(m.c_str(), 0) != 0) ::umount2(m.c_str(), MNT_DETACH);
    LOG(INFO) << "unmounted leftover " << m;
  }
}

void deleteLink(const std::string& name) {
  if (!fs::exists("/sys/class/net/" + name)) return;
  if (auto s = runChecked({"ip", "link", "del", name}); !s.ok()) LOG(WARNING) << s.status();
}

// net.ipv4.ip_forward: the CNI bridge plugin (isGateway) turns it on. The first lab records the
// original value; the last one to go puts it back. Both under one global flock.
void recordIpForward() {
  const int lock = tryLock(std::string(kLabRoot) + "/ip_forward.lock", /*wait=*/true);
  const std::string orig = std::string(kLabRoot) + "/ip_forward.orig";
  if (!fs::exists(orig)) {
    if (auto s = writeFile(orig, readFile(kIpForward)); !s.ok()) LOG(WARNING) << s;
  }
  if (lock >= 0) ::close(lock);
}

void restoreIpForwardUnlessInUse(int leaving_slot) {
  const int lock = tryLock(std::string(kLabRoot) + "/ip_forward.lock", /*wait=*/true);
  bool in_use = false;
  for (int slot = 0; slot < kMaxSlots && !in_use; ++slot) {
    in_use = slot != leaving_slot && slotLive(slot);
  }
  const std::string orig = std::string(kLabRoot) + "/ip_forward.orig";
  if (!in_use && fs::exists(orig)) {
    if (writeFile(kIpForward, readFile(orig)).ok()) fs::remove(orig);
  }
  if (lock >= 0) ::close(lock);
}

// Everything a lab in `slot` may have left once its containerd is stopped.
void removeSlotLeftovers(int slot) {
  const std::string dir = slotDir(slot);
  killShims(socketOf(dir));
  removeCgroups(slotBridge(slot));
  unmountUnder(dir);
  deleteLink(slotBridge(slot));
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) LOG(WARNING) << "cannot remove " << dir << ": " << ec.message();
  restoreIpForwardUnlessInUse(slot);
}

// A dead lab's slot, whose lock the caller holds: the sandboxes go through CRI (that is what
// frees their netns under /var/run/netns and their IPs), so restart its containerd if needed.
void reapSlot(int slot) {
  const std::string dir = slotDir(slot);
  if (!fs::exists(dir)) return;
  LOG(WARNING) << "reaping the leftovers of a dead lab in " << dir;
  pid_t pid = runningContainerd(dir);
  if (pid == 0 && fs::exists(dir + "/config.toml")) {
    fs::remove(socketOf(dir));
    if (auto spawned = spawnContainerd(dir); spawned.ok()) pid = *spawned;
  }
  if (pid != 0 && waitForSocket(dir, pid, seconds(10)).ok()) {
    KubeletClient client("unix://" + socketOf(dir), seconds(30));
    if (auto s = removeAll(client); !s.ok()) LOG(WARNING) << "reaping " << dir << ": " << s;
  }
  if (pid != 0) stopProcess(pid, "containerd");
  removeSlotLeftovers(slot);
}

// Returns the directories of dead labs that reaping could not remove.
std::vector<std::string> reapDeadSlots(int except_slot) {
  std::vector<std::string> left;
  for (int slot = 0; slot < kMaxSlots; ++slot) {
    if (slot == except_slot || !fs::exists(slotDir(slot))) continue;
    const int fd = lockSlot(slot);
    if (fd < 0) continue;  // alive
    reapSlot(slot);
    if (fs::exists(slotDir(slot))) left.push_back(slotDir(slot));
    ::close(fd);
  }
  return left;
}

// No route of the host overlaps the subnet (another lab, another test, a real network).
bool subnetFree(int slot) {
  const uint32_t net = (10u << 24) | (251u << 16) | (static_cast<uint32_t>(slot) << 8);
  const uint32_t mask = 0xffffff00u;
  std::istringstream in(readFile("/proc/net/route"));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string iface, dest_hex, gw_hex, flags, refcnt, use, metric, mask_hex;
    fields >> iface >> dest_hex >> gw_hex >> flags >> refcnt >> use >> metric >> mask_hex;
    if (mask_hex.empty()) continue;
    const uint32_t dest = ntohl(static_cast<uint32_t>(std::stoul(dest_hex, nullptr, 16)));
    const uint32_t route_mask = ntohl(static_cast<uint32_t>(std::stoul(mask_hex, nullptr, 16)));
    if (route_mask == 0) continue;  // default route
    const uint32_t common = route_mask & mask;
    if ((dest & common) == (net & common)) return false;
  }
  return !fs::exists("/sys/class/net/" + slotBridge(slot));
}

bool overlayWorks(const std::string& dir) {
  const std::string t = dir + "/overlay-probe";
  for (const char* d : {"/l", "/u", "/w", "/m"}) fs::create_directories(t + d);
  const std::string options = "lowerdir=" + t + "/l,upperdir=" + t + "/u,workdir=" + t + "/w";
  const bool ok = ::mount("overlay", (t + "/m").c_str(), "overlay", 0, options.c_str()) == 0;
  if (ok) ::umount2((t + "/m").c_str(), MNT_DETACH);
  std::error_code ec;
  fs::remove_all(t, ec);
  return ok;
}

std::string cniConfig(int slot, const std::string& dir) {
  // containerd adds the loopback plugin itself (from the same bin_dir) for every sandbox.
  const nlohmann::json bridge = {
      {"type", "bridge"},
      {"bridge", slotBridge(slot)},
      {"isGateway", true},
      {"ipMasq", false},
      {"hairpinMode", true},
      {"ipam",
       {{"type", "host-local"},
        {"ranges", {{{{"subnet", slotSubnet(slot)}}}}},
        {"dataDir", dir + "/cni/ipam"}}},
  };
  return nlohmann::json{
      {"cniVersion", "1.0.0"}, {"name", "capture-controller-lab"}, {"plugins", {bridge}}}
      .dump(2);
}

constexpr char kContainerdConfig[] = R"(version = 2
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.blockfile"]
[grpc]
  address = "$DIR/containerd.sock"
[ttrpc]
  address = "$DIR/containerd.sock.ttrpc"
[debug]
  address = "$DIR/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Where root lacks CAP_SYS_RESOURCE (as on this project's VMs), runc cannot lower
  # oom_score_adj to the sandbox's -998 and RunPodSandbox fails; clamp to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$SNAPSHOTTER"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
    max_conf_num = 1
)";

// containerd 2.x reads version 2 configs too, but migrates them on every start; its own
// version 3 moves the CRI plugin's settings to io.containerd.cri.v1.images (image store,
// snapshotter, sandbox image) and io.containerd.cri.v1.runtime (runtimes, CNI).
constexpr char kContainerdConfigV3[] = R"(version = 3
root = "$DIR/root"
state = "$DIR/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs",
                    "io.containerd.differ.v1.erofs"]
[grpc]
  address = "$DIR/containerd.sock"
[ttrpc]
  address = "$DIR/containerd.sock.ttrpc"
[debug]
  address = "$DIR/debug.sock"
  level = "info"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"
# On by default in 2.x, and its socket is one per machine (/var/run/nri/nri.sock): labs side by
# side, or the machine's own containerd, would take it from each other.
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "$SNAPSHOTTER"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$SANDBOX_IMAGE"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # As in the version 2 config above.
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  enable_cdi = false
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$DIR/runc"
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$DIR/cni/net.d"
    max_conf_num = 1
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
)";

std::string containerdConfig(const std::string& dir, const std::string& snapshotter,
                             const std::string& sandbox_image, int major_version) {
  return absl::StrReplaceAll(
      major_version >= 2 ? kContainerdConfigV3 : kContainerdConfig,
      {{"$DIR", dir}, {"$SNAPSHOTTER", snapshotter}, {"$SANDBOX_IMAGE", sandbox_image}});
}

// "containerd github.com/containerd/containerd/v2 2.1.9+unknown" → "2.1.9+unknown".
absl::StatusOr<std::string> versionOfBinary(const std::string& binary) {
  auto out = runChecked({binary, "--version"}, seconds(30));
  if (!out.ok()) return out.status();
  std::vector<std::string> fields = absl::StrSplit(*out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  if (fields.size() < 3)
    return absl::InternalError("unexpected `" + binary + " --version`: " + *out);
  return fields[2];
}

// "v2.1.9", "2.1.9+unknown", "1.7.24~ds1" → 2, 2, 1; 0 when it starts with no number.
int majorOf(const std::string& version) {
  const size_t start = version.find_first_of("0123456789");
  return start == std::string::npos ? 0 : std::atoi(version.c_str() + start);
}

// Whether `version` (as containerd says it) is `expected` ("1.7.24"): equal once a leading "v" is
// dropped, or followed by a suffix that is not part of a longer number ("~ds1", "+unknown", "-rc").
bool versionMatches(std::string version, const std::string& expected) {
  if (!version.empty() && version[0] == 'v') version.erase(0, 1);
  if (version.rfind(expected, 0) != 0) return false;
  return version.size() == expected.size() ||
         std::string("~+-").find(version[expected.size()]) != std::string::npos;
}

}  // namespace

ContainerdLab::ContainerdLab(int slot)
    : slot_(slot),
      dir_(slotDir(slot)),
      socket_(socketOf(dir_)),
      bridge_(slotBridge(slot)),
      subnet_(slotSubnet(slot)),
      gateway_(slotGateway(slot)) {}

LabOptions LabOptions::fromEnvironment() {
  LabOptions options;
  if (const char* root = std::getenv("CAPTURE_CONTROLLER_LAB_CONTAINERD")) {
    options.containerd_root = root;
  }
  if (const char* version = std::getenv("CAPTURE_CONTROLLER_LAB_CONTAINERD_VERSION")) {
    options.expect_version = version;
  }
  return options;
}

absl::StatusOr<std::unique_ptr<ContainerdLab>> ContainerdLab::start() {
  return start(LabOptions::fromEnvironment());
}

absl::StatusOr<std::unique_ptr<ContainerdLab>> ContainerdLab::start(const LabOptions& options) {
  if (::geteuid() != 0) return absl::FailedPreconditionError("the containerd lab needs root");
  const auto started = Clock::now();
  std::error_code ec;
  fs::create_directories(kLabRoot, ec);
  if (ec) {
    return absl::InternalError("cannot create " + std::string(kLabRoot) + ": " + ec.message());
  }

  auto archive = runChecked({LAB_SOURCE_DIR "/pause-image.sh", kImageCache}, seconds(120));
  if (!archive.ok()) return archive.status();
  while (!archive->empty() && archive->back() == '\n') archive->pop_back();

  std::unique_ptr<ContainerdLab> lab;
  for (int slot = 0; slot < kMaxSlots && lab == nullptr; ++slot) {
    const int fd = lockSlot(slot);
    if (fd < 0) continue;
    reapSlot(slot);
    if (!subnetFree(slot)) {
      ::close(fd);
      continue;
    }
    lab.reset(new ContainerdLab(slot));
    lab->slot_lock_fd_ = fd;
  }
  if (lab == nullptr) return absl::ResourceExhaustedError("no free lab slot (all 32 in use)");
  reapDeadSlots(lab->slot_);

  // the destructor cleans up
  if (auto s = lab->startContainerd(*archive, options); !s.ok()) return s;
  LOG(INFO) << "containerd lab up in " << lab->dir_ << " (containerd " << lab->containerd_version_
            << " " << lab->containerd_binary_ << ", pid " << lab->containerd_pid_ << ", bridge "
            << lab->bridge_ << ", subnet " << lab->subnet_ << ") in "
            << std::chrono::duration_cast<milliseconds>(Clock::now() - started).count() << "ms";
  return lab;
}

// `name` as posix_spawnp would find it on PATH; `name` itself when it is on none.
static std::string onPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (const auto dir : absl::StrSplit(path != nullptr ? path : "", ':', absl::SkipEmpty())) {
    const std::string candidate = std::string(dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

absl::Status ContainerdLab::startContainerd(const std::string& pause_archive,
                                            const LabOptions& options) {
  containerd_binary_ = onPath("containerd");
  ctr_binary_ = onPath("ctr");
  if (!options.containerd_root.empty()) {
    const std::string bin = options.containerd_root + "/usr/bin";
    for (const char* b : {"containerd", "containerd-shim-runc-v2", "ctr"}) {
      if (::access((bin + "/" + b).c_str(), X_OK) != 0) {
        return absl::NotFoundError(
            "no executable " + bin + "/" + b +
            " (CAPTURE_CONTROLLER_LAB_CONTAINERD=" + options.containerd_root + ")");
      }
    }
    containerd_binary_ = fs::absolute(bin + "/containerd").lexically_normal().string();
    ctr_binary_ = fs::absolute(bin + "/ctr").lexically_normal().string();
  }
  auto binary_version = versionOfBinary(containerd_binary_);
  if (!binary_version.ok()) return binary_version.status();

  for (const char* d :
       {"", "/root", "/state", "/opt", "/runc", "/cni/net.d", "/cni/ipam", "/pods"}) {
    fs::create_directories(dir_ + d);
  }
  // pause-<key>.tar → capture-controller.test/pause:<key>
  const std::string key = fs::path(pause_archive).stem().string().substr(6);
  const std::string sandbox_image = std::string(kPauseRepository) + ":" + key;
  snapshotter_ = overlayWorks(dir_) ? "overlayfs" : "native";
  if (auto s = writeFile(dir_ + "/cni/net.d/10-lab.conflist", cniConfig(slot_, dir_)); !s.ok()) {
    return s;
  }
  if (auto s = writeFile(dir_ + "/config.toml", containerdConfig(dir_, snapshotter_, sandbox_image,
                                                                 majorOf(*binary_version)));
      !s.ok()) {
    return s;
  }
  if (auto s = writeFile(binaryFileOf(dir_), containerd_binary_); !s.ok()) return s;
  recordIpForward();

  auto pid = spawnContainerd(dir_);
  if (!pid.ok()) return pid.status();
  containerd_pid_ = *pid;
  if (auto s = waitForSocket(dir_, containerd_pid_, seconds(30)); !s.ok()) return s;
  client_ = std::make_unique<cri::RuntimeClient>(
      cri::RuntimeClientOptions{endpoint(), std::chrono::seconds(60)});
  kubelet_ = std::make_unique<KubeletClient>(endpoint(), seconds(60));

  if (auto s = runChecked({ctr_binary_, "--address", socket_, "-n", "k8s.io", "images", "import",
                           "--snapshotter", snapshotter_, "--base-name", kPauseRepository,
                           pause_archive});
      !s.ok()) {
    return s.status();
  }
  auto version = kubelet_->version();
  if (!version.ok()) return version.status();
  containerd_version_ = version->runtime_version();
  if (!options.expect_version.empty() &&
      !versionMatches(containerd_version_, options.expect_version)) {
    return absl::FailedPreconditionError("containerd " + containerd_binary_ + " says it is " +
                                         containerd_version_ + " (CRI Version), not " +
                                         options.expect_version);
  }

  // Ready when the kubelet would start pods: RuntimeReady and NetworkReady (the CNI config is
  // loaded), and the CRI image store has seen the import (else RunPodSandbox tries to pull).
  std::string last;
  const auto ready_for_pods = [&] {
    auto status = kubelet_->status();
    int ready = 0;
    if (status.ok()) {
      for (const auto& c : status->status().conditions()) {
        if ((c.type() == "RuntimeReady" || c.type() == "NetworkReady") && c.status()) ++ready;
      }
      last = status->DebugString();
    } else {
      last = status.status().ToString();
    }
    if (ready != 2) return false;
    auto image = kubelet_->imageStatus(sandbox_image);
    if (image.ok() && image->has_image()) return true;
    last = "image " + sandbox_image + " not visible to CRI yet";
    return false;
  };
  if (testsupport::waitUntil(ready_for_pods, seconds(30), kPoll)) {
    // What containerd warned about while starting (a config it reads differently, a plugin it
    // skipped): in the test's log, where a new version's complaints are seen.
    std::istringstream log(readFile(dir_ + "/containerd.log"));
    for (std::string line; std::getline(log, line);) {
      if (line.find("level=warning") != std::string::npos ||
          line.find("level=error") != std::string::npos) {
        LOG(WARNING) << "containerd " << containerd_version_ << ": " << line;
      }
    }
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError("containerd lab not ready after 30s: " + last +
                                     "\ncontainerd log:\n" +
                                     tail(readFile(dir_ + "/containerd.log")));
}

ContainerdLab::~ContainerdLab() {
  if (kubelet_ != nullptr && testsupport::processLives(containerd_pid_)) {
    if (auto s = removeAll(*kubelet_); !s.ok()) LOG(WARNING) << "lab teardown: " << s;
  }
  client_.reset();
  kubelet_.reset();
  if (containerd_pid_ != 0) stopProcess(containerd_pid_, "containerd");
  removeSlotLeftovers(slot_);
  if (slot_lock_fd_ >= 0) ::close(slot_lock_fd_);
  slot_lock_fd_ = -1;
}

runtime::v1::PodSandboxConfig ContainerdLab::sandboxConfig(const PodSpec& pod) const {
  runtime::v1::PodSandboxConfig config;
  auto* metadata = config.mutable_metadata();
  metadata->set_name(pod.name);
  metadata->set_namespace_(pod.namespace_);
  metadata->set_uid(pod.uid);
  metadata->set_attempt(pod.attempt);
  // The kubelet leaves the hostname empty for host-network pods (runc refuses to set one
  // without a UTS namespace of its own).
  if (!pod.host_network) config.set_hostname(pod.name);
  config.set_log_directory(dir_ + "/pods/" + pod.namespace_ + "_" + pod.name + "_" + pod.uid);
  auto& labels = *config.mutable_labels();
  labels["io.kubernetes.pod.name"] = pod.name;
  labels["io.kubernetes.pod.namespace"] = pod.namespace_;
  labels["io.kubernetes.pod.uid"] = pod.uid;
  (*config.mutable_annotations())["kubernetes.io/config.source"] = "api";
  auto* linux = config.mutable_linux();
  linux->set_cgroup_parent("/" + bridge_ + "/pod" + pod.uid);
  auto* namespaces = linux->mutable_security_context()->mutable_namespace_options();
  namespaces->set_network(pod.host_network ? runtime::v1::NODE : runtime::v1::POD);
  namespaces->set_pid(runtime::v1::CONTAINER);
  namespaces->set_ipc(runtime::v1::POD);
  return config;
}

absl::StatusOr<Sandbox> ContainerdLab::runPodSandbox(PodSpec pod) {
  if (pod.uid.empty()) pod.uid = newPodUid();
  const runtime::v1::PodSandboxConfig config = sandboxConfig(pod);
  fs::create_directories(config.log_directory());
  auto id = kubelet_->runPodSandbox(config);
  if (!id.ok()) return id.status();
  auto status = kubelet_->podSandboxStatus(*id);
  if (!status.ok()) return status.status();
  if (status->status().state() != runtime::v1::SANDBOX_READY) {
    return absl::InternalError("RunPodSandbox returned " + *id + " but it is not READY");
  }
  return Sandbox{*id, pod.uid, status->status().network().ip()};
}

absl::Status ContainerdLab::stopPodSandbox(const std::string& id) {
  return kubelet_->stopPodSandbox(id);
}

absl::Status ContainerdLab::removePodSandbox(const std::string& id) {
  return kubelet_->removePodSandbox(id);
}

absl::Status ContainerdLab::importImage(const std::string& archive) {
  return runChecked({ctr_binary_, "--address", socket_, "-n", "k8s.io", "images", "import",
                     "--snapshotter", snapshotter_, archive},
                    std::chrono::minutes(5))
      .status();
}

std::string ContainerdLab::newPodUid() {
  std::string uid = readFile("/proc/sys/kernel/random/uuid");
  while (!uid.empty() && uid.back() == '\n') uid.pop_back();
  return uid;
}

std::vector<std::string> reapDeadLabs() {
  if (!fs::exists(kLabRoot)) return {};
  auto left = reapDeadSlots(-1);
  restoreIpForwardUnlessInUse(-1);
  return left;
}

}  // namespace lab

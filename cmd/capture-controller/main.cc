// capture-controller: flags, -h/--help, --version, and the subcommand to run.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_replace.h"
#include "build_info.h"
#include "cmd/capture-controller/commands.h"

DECLARE_bool(help);
DECLARE_bool(helpshort);
DECLARE_bool(version);

namespace {

constexpr char kUsage[] = R"(packet captures of Pods, on demand, by annotation.

Usage:
  capture-controller [run] [--node-name N] [--cri-endpoint E] [--kubeconfig F] [--capture-dir D] ...
      The node agent (the DaemonSet runs this). For each Pod of this node annotated
      tcpdump.antrea.io="N", runs `tcpdump -C 1M -W N -w <capture-dir>/capture-<pod>.pcap` in
      the Pod's network namespace; removing the annotation or deleting the Pod stops it and
      deletes the files. Outcomes are Events on the Pod. Stops cleanly on SIGTERM or SIGINT.

  capture-controller captures [--json] [--pod NAMESPACE/NAME [--paths]] [--http-address ADDR]
      Asks the running controller (kubectl exec into its Pod) for its active captures: Pod,
      state, sandbox (short ID, as crictl shows it), netns, tcpdump pid, files and sizes.

  capture-controller sandbox (--pod-uid UID | --pod NAMESPACE/NAME) [--cri-endpoint E] [--cri-timeout D]
      Resolves the pod's live sandbox through the CRI runtime (ListPodSandbox by the kubelet's
      labels, then PodSandboxStatus verbose) and prints it as JSON: sandbox id, state, attempt,
      netns path, pause pid, pod IP. Compare with `crictl inspectp <id>`. On failure prints the
      reason to stderr and exits 1.

  capture-controller follow NAMESPACE/POD [--http-address ADDR] | wireshark -k -i -
      Streams the Pod's running capture to stdout as one pcap stream, live: the packets of the
      file tcpdump writes now, then each next file as tcpdump rotates (it starts no tcpdump of
      its own). Ends, exit status 0, when the capture is stopped, restarted or completed (what
      is on disk is written out first) or when the reader quits; 1 on an error.

Flags (--pod-uid and --pod_uid are the same flag):
)";

// glog's flags that --help shows beside ours.
const std::set<std::string> kLoggingFlags = {"v", "vmodule", "minloglevel", "logtostderr"};

// `text` broken into lines of at most `width` characters after `indent`, at spaces.
std::string wrap(const std::string& text, size_t indent, size_t width) {
  std::string out, line;
  std::istringstream words(text);
  for (std::string word; words >> word;) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

// The flags as Kubernetes components print them: --capture-dir, with dashes, its type and its
// default (gflags would print -capture_dir, which users could not paste into a DaemonSet).
void printHelp() {
  std::cout << gflags::ProgramUsage();
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const gflags::CommandLineFlagInfo& flag : flags) {
    if (!flag.filename.ends_with("cmd/capture-controller/flags.cc") &&
        !kLoggingFlags.contains(flag.name)) {
      continue;
    }
    std::cout << "  --" << absl::StrReplaceAll(flag.name, {{"_", "-"}});
    if (flag.type != "bool") std::cout << " " << flag.type;
    std::cout << "\n";
    std::string description = flag.description;
    if (flag.type == "string") {
      if (!flag.default_value.empty()) description += " (default \"" + flag.default_value + "\")";
    } else if (flag.default_value != "false") {
      description += " (default " + flag.default_value + ")";
    }
    std::cout << wrap(description, 6, 92);
  }
  std::cout << "  -h, --help\n" << wrap("this help", 6, 92);
  std::cout << "  --version\n" << wrap("the version and the build's git revision", 6, 92);
}

void printVersion() {
  std::cout << "capture-controller " << build_info::kVersion << " (git " << build_info::kGitRevision
            << ")\n";
}

// A subcommand, and whether it takes positional arguments (only follow: NAMESPACE/POD); the
// others refuse any, so that a stray word is an error rather than ignored.
struct Command {
  int (*run)(const std::vector<std::string>& arguments);
  bool takes_arguments = false;
};

const std::map<std::string_view, Command> kCommands = {
    {"run", {[](const std::vector<std::string>&) { return cmd::runCommand(); }}},
    {"captures", {[](const std::vector<std::string>&) { return cmd::capturesCommand(); }}},
    {"sandbox", {[](const std::vector<std::string>&) { return cmd::sandboxCommand(); }}},
    {"follow", {cmd::followCommand, /*takes_arguments=*/true}},
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(kUsage);
  // A default, not an override: --logtostderr=false still writes glog's files.
  gflags::SetCommandLineOptionWithMode("logtostderr", "true", gflags::SET_FLAGS_DEFAULT);
  // -h, as every command line tool takes it; gflags knows only --help.
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "-h") {
      printHelp();
      return 0;
    }
  }
  gflags::ParseCommandLineNonHelpFlags(&argc, &argv, /*remove_flags=*/true);
  if (FLAGS_help || FLAGS_helpshort) {
    printHelp();
    return 0;
  }
  if (FLAGS_version) {
    printVersion();
    return 0;
  }
  gflags::HandleCommandLineHelpFlags();  // --helpxml, ...
  google::InitGoogleLogging(argv[0]);

  const std::string_view name = argc >= 2 ? argv[1] : "run";
  const auto command = kCommands.find(name);
  if (command == kCommands.end() || (argc > 2 && !command->second.takes_arguments)) {
    std::cerr << (command == kCommands.end() ? "unknown command: " : "unexpected argument: ")
              << (command == kCommands.end() ? name : std::string_view(argv[2]))
              << "\nusage: capture-controller [run | captures | sandbox | follow] [flags] (see "
                 "--help)\n";
    return 2;
  }
  const std::vector<std::string> arguments =
      argc > 2 ? std::vector<std::string>(argv + 2, argv + argc) : std::vector<std::string>();
  return command->second.run(arguments);
}

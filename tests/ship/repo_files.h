#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

// Reading the repository's own files and running small tools on them, for the ship checks.
namespace ship {

// Absolute path of a file given relative to the repository's root.
std::string repoPath(const std::string& relative);

// The whole file; the test fails (and this returns "") when it cannot be read.
std::string readRepoFile(const std::string& relative);

struct CommandResult {
  int exit_code = -1;  // -1 when the command could not be run or was killed by a signal
  std::string output;  // stdout and stderr, interleaved
};
CommandResult runCommand(const std::string& shell_command);

// Single-quotes `word` for /bin/sh.
std::string shellQuote(const std::string& word);

// packages.txt: the packages whose roles include `role` (build, test, runtime), in file order.
std::vector<std::string> packagesWithRole(const std::string& role);

// The names kind/common.sh defines for the Kind scripts: `NAME=value` and the default of
// `NAME=${NAME:-value}`. Lines computed from other names (ROOT=$(...)) are left out.
std::map<std::string, std::string> kindScriptNames();

// KUBECTL_DEBS_DIR/kubectl_<version>/usr/bin/kubectl, the kubectl of Debian trixie as the
// ship.fetch_kubectl fixture (tests/tools/debian-package.sh) unpacks it; of several versions, the
// one unpacked last (its .unpacked marker is the newest). Empty when there is none.
std::string fixtureKubectl();

// The flags the real binary defines, as gflags names them (capture_dir), from its --helpxml:
// those whose defining file ends with `defined_in` (cmd/capture-controller/flags.cc: ours), or
// every one (ours, glog's, gflags' own).
std::set<std::string> binaryFlags(const std::string& defined_in = "");

}  // namespace ship

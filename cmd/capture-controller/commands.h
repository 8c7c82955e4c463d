#pragma once

#include <string>
#include <vector>

// The subcommands of capture-controller, one file each; each returns the process's exit code.
namespace cmd {

// run_command.cc: the controller, what the DaemonSet runs.
int runCommand();
// captures_command.cc: the running controller's captures, from its /captures.
int capturesCommand();
// sandbox_command.cc: a Pod's sandbox as the controller resolves it.
int sandboxCommand();
// follow_command.cc: a Pod's running capture as one live pcap stream on stdout; `arguments` are
// the positional arguments after `follow` (exactly one: NAMESPACE/POD).
int followCommand(const std::vector<std::string>& arguments);

}  // namespace cmd

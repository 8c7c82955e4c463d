#pragma once

// The subcommands of capture-controller, one file each; each returns the process's exit code.
namespace cmd {

// run_command.cc: the controller, what the DaemonSet runs.
int runCommand();
// captures_command.cc: the running controller's captures, from its /captures.
int capturesCommand();
// sandbox_command.cc: a Pod's sandbox as the controller resolves it.
int sandboxCommand();

}  // namespace cmd

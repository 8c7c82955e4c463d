// The binary's command line as users and the DaemonSet meet it: -h and --help print every flag
// the way Kubernetes components spell them (--capture-dir), --version the version and the git
// revision of the build.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>

#include "tests/ship/repo_files.h"

namespace ship {
namespace {

CommandResult runBinary(const std::string& args) {
  return runCommand(shellQuote(CAPTURE_CONTROLLER_BINARY) + " " + args);
}

TEST(CommandLine, HelpSpellsEveryFlagWithDashesAsTheDaemonSetDoes) {
  const CommandResult help = runBinary("--help");
  ASSERT_EQ(help.exit_code, 0) << help.output;
  const std::set<std::string> flags = binaryFlags("cmd/capture-controller/flags.cc");
  ASSERT_TRUE(flags.contains("capture_dir")) << "no flag list from --helpxml";
  for (const std::string& name : flags) {
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    // "  --name" at the start of a line, then its type or the end of the line (a bool).
    EXPECT_TRUE(std::regex_search(help.output, std::regex("\n  --" + dashed + "( |\n)")))
        << "--help does not show --" << dashed << ":\n"
        << help.output;
    if (dashed != name) {
      EXPECT_FALSE(std::regex_search(help.output, std::regex("\n +--?" + name + "\\b")))
          << "--help lists gflags' spelling of --" << dashed;
    }
  }
  EXPECT_NE(help.output.find("--capture-dir string"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("(default \"/\")"), std::string::npos) << help.output;
  EXPECT_NE(help.output.find("--v int32"), std::string::npos) << "glog's verbosity";
  EXPECT_NE(help.output.find("-h, --help"), std::string::npos);
  EXPECT_NE(help.output.find("--version"), std::string::npos);
}

TEST(CommandLine, ShortHelpIsTheSameHelp) {
  const CommandResult help = runBinary("--help");
  const CommandResult h = runBinary("-h");
  EXPECT_EQ(h.exit_code, 0) << h.output;
  EXPECT_EQ(h.output, help.output);
  // Wherever it stands, and whatever else is on the line.
  EXPECT_EQ(runBinary("captures -h").output, help.output);
}

TEST(CommandLine, VersionPrintsTheVersionAndTheGitRevision) {
  const CommandResult version = runBinary("--version");
  EXPECT_EQ(version.exit_code, 0) << version.output;
  // A revision from git (12 hex digits, -dirty for a changed tree) or, built outside git
  // without one given, "unknown".
  EXPECT_TRUE(std::regex_match(
      version.output,
      std::regex(
          R"(capture-controller [0-9]+\.[0-9]+\.[0-9]+\S* \(git ([0-9a-f]{12}(-dirty)?|unknown)\)\n)")))
      << version.output;
}

TEST(CommandLine, AnUnknownFlagFailsAndNamesIt) {
  const CommandResult bad = runBinary("--capture-directory=/x");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("capture-directory"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace ship

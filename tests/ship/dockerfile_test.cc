// The Dockerfile, read instruction by instruction and checked against packages.txt: both stages
// take their apt packages from it (plus, in the final stage, the packages of the libraries the
// binary links), and no package is named in the Dockerfile itself.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/ship/repo_files.h"
#include "tests/support/files.h"

namespace ship {
namespace {

struct Instruction {
  std::string keyword;  // upper case: FROM, RUN, COPY, ...
  std::string args;     // continuation lines joined, comments dropped
};

struct Stage {
  std::string from;  // the FROM line's arguments, e.g. "ubuntu:24.04 AS builder"
  std::vector<Instruction> instructions;

  std::vector<std::string> args(const std::string& keyword) const {
    std::vector<std::string> found;
    for (const Instruction& i : instructions) {
      if (i.keyword == keyword) found.push_back(i.args);
    }
    return found;
  }
  std::string runText() const {
    std::string text;
    for (const std::string& run : args("RUN")) text += run + "\n";
    return text;
  }
};

// Docker's own rules, as far as this Dockerfile needs them: '#' starts a comment line (also
// inside a continued instruction), a trailing '\' continues the instruction on the next line.
// Only ARG may come before the first FROM (it names what FROM lines use); those ARGs are the
// first element, a Stage with an empty `from`.
std::vector<Stage> parseDockerfile(const std::string& text) {
  std::vector<Stage> stages{Stage{}};
  std::istringstream lines(text);
  std::string line, pending;
  auto finish = [&](const std::string& instruction) {
    const size_t start = instruction.find_first_not_of(" \t");
    if (start == std::string::npos) return;
    const size_t space = instruction.find_first_of(" \t", start);
    Instruction parsed;
    parsed.keyword = instruction.substr(start, space - start);
    for (char& c : parsed.keyword) c = static_cast<char>(std::toupper(c));
    if (space != std::string::npos) {
      parsed.args = instruction.substr(instruction.find_first_not_of(" \t", space));
    }
    if (parsed.keyword == "FROM") {
      stages.push_back(Stage{parsed.args, {}});
    } else if (stages.size() > 1 || parsed.keyword == "ARG") {
      stages.back().instructions.push_back(parsed);
    } else {
      ADD_FAILURE() << "instruction before FROM: " << instruction;
    }
  };
  while (std::getline(lines, line)) {
    const size_t first = line.find_first_not_of(" \t");
    if (first != std::string::npos && line[first] == '#') continue;
    const size_t last = line.find_last_not_of(" \t");
    if (last != std::string::npos && line[last] == '\\') {
      pending += line.substr(0, last);  // Docker drops the backslash and the line break
      continue;
    }
    finish(pending + line);
    pending.clear();
  }
  finish(pending);
  return stages;
}

// The ARGs before the first FROM.
Stage globalArgs() { return parseDockerfile(readRepoFile("Dockerfile")).front(); }

// The build stages.
std::vector<Stage> dockerfile() {
  std::vector<Stage> stages = parseDockerfile(readRepoFile("Dockerfile"));
  stages.erase(stages.begin());
  return stages;
}

// Runs the awk program that `run` applies to packages.txt on the repository's packages.txt:
// what the image build would install from it.
std::vector<std::string> packagesSelectedBy(const std::string& run) {
  static const std::regex awk_on_packages(R"(awk\s+'([^']*)'\s+\S*packages\.txt)");
  std::smatch m;
  if (!std::regex_search(run, m, awk_on_packages)) {
    ADD_FAILURE() << "no `awk '...' packages.txt` in:\n" << run;
    return {};
  }
  const CommandResult awk =
      runCommand("awk " + shellQuote(m[1]) + " " + shellQuote(repoPath("packages.txt")));
  EXPECT_EQ(awk.exit_code, 0) << awk.output;
  std::vector<std::string> packages;
  std::istringstream words(awk.output);
  for (std::string word; words >> word;) packages.push_back(word);
  return packages;
}

// The words after every `apt-get install` / `apt install`, up to the end of that command.
std::vector<std::string> aptInstallArguments(const std::string& run) {
  static const std::regex install(R"(\bapt(-get)?\s+install\b([^&|;)}\n]*))");
  std::vector<std::string> words;
  for (auto it = std::sregex_iterator(run.begin(), run.end(), install);
       it != std::sregex_iterator(); ++it) {
    std::istringstream rest((*it)[2].str());
    for (std::string word; rest >> word;) words.push_back(word);
  }
  return words;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Both stages on BASE_IMAGE, ubuntu:24.04 unless the build says otherwise (tests/image builds on
// a local Debian 12).
TEST(Dockerfile, BuildsOnUbuntu2404InTwoStagesUnlessBaseImageIsGiven) {
  EXPECT_EQ(globalArgs().args("ARG"), std::vector<std::string>{"BASE_IMAGE=ubuntu:24.04"});
  const auto stages = dockerfile();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].from, "${BASE_IMAGE} AS builder");
  EXPECT_EQ(stages[1].from, "${BASE_IMAGE}");
}

TEST(Dockerfile, BuilderInstallsExactlyTheBuildPackagesOfPackagesTxt) {
  const auto stages = dockerfile();
  ASSERT_EQ(stages.size(), 2u);
  const std::string run = stages[0].runText();
  EXPECT_EQ(packagesSelectedBy(run), packagesWithRole("build"));
  EXPECT_FALSE(packagesWithRole("build").empty());
  EXPECT_TRUE(contains(run, "| xargs apt-get install"));
}

TEST(Dockerfile, FinalStageInstallsRuntimePackagesAndThoseOfTheLinkedLibraries) {
  const auto stages = dockerfile();
  ASSERT_EQ(stages.size(), 2u);
  const Stage& final_stage = stages[1];
  const std::string run = final_stage.runText();
  const std::vector<std::string> runtime = packagesSelectedBy(run);
  EXPECT_EQ(runtime, packagesWithRole("runtime"));
  for (const char* needed : {"bash", "tcpdump", "ca-certificates"}) {
    EXPECT_NE(std::find(runtime.begin(), runtime.end(), needed), runtime.end()) << needed;
  }
  // The builder derives the list from the binary; the final stage installs it.
  EXPECT_TRUE(contains(stages[0].runText(),
                       "deploy/image/runtime-packages.sh /out/bin/capture-controller > "
                       "/out/runtime-packages.txt"));
  bool copies_list = false;
  for (const std::string& copy : final_stage.args("COPY")) {
    copies_list |= contains(copy, "--from=builder /out/runtime-packages.txt");
  }
  EXPECT_TRUE(copies_list);
  EXPECT_TRUE(contains(run, "cat /tmp/runtime-packages.txt; }"));
  EXPECT_TRUE(contains(run, "| xargs apt-get install"));
}

TEST(Dockerfile, NamesNoAptPackageItself) {
  for (const Stage& stage : dockerfile()) {
    const std::string run = stage.runText();
    const std::vector<std::string> words = aptInstallArguments(run);
    EXPECT_FALSE(words.empty()) << stage.from << " installs nothing";
    for (const std::string& word : words) {
      EXPECT_EQ(word[0], '-') << "apt package named in the Dockerfile: " << word;
    }
    EXPECT_NE(std::find(words.begin(), words.end(), "--no-install-recommends"), words.end());
    EXPECT_FALSE(std::regex_search(run, std::regex(R"(\bdpkg\s+-i\b)")));
  }
  // The check itself: a hand-written list is caught.
  EXPECT_EQ(aptInstallArguments("apt-get update && apt-get install -y cmake g++ && rm x"),
            (std::vector<std::string>{"-y", "cmake", "g++"}));
}

TEST(Dockerfile, EveryStageIsNonInteractiveAndDropsAptLists) {
  for (const Stage& stage : dockerfile()) {
    bool non_interactive = false;
    for (const char* keyword : {"ARG", "ENV"}) {
      for (const std::string& arg : stage.args(keyword)) {
        non_interactive |= arg == "DEBIAN_FRONTEND=noninteractive";
      }
    }
    EXPECT_TRUE(non_interactive) << stage.from;
    for (const std::string& run : stage.args("RUN")) {
      if (contains(run, "apt-get update")) {
        EXPECT_TRUE(contains(run, "rm -rf /var/lib/apt/lists/*")) << run;
      }
    }
  }
}

TEST(Dockerfile, BuilderBuildsReleaseWithoutTests) {
  const auto stages = dockerfile();
  ASSERT_EQ(stages.size(), 2u);
  const std::string run = stages[0].runText();
  EXPECT_TRUE(contains(run, "-DCMAKE_BUILD_TYPE=Release"));
  EXPECT_TRUE(contains(run, "-DCAPTURE_CONTROLLER_BUILD_TESTS=OFF"));
}

TEST(Dockerfile, FinalStageHoldsTheBinaryAndNoToolchain) {
  const auto stages = dockerfile();
  ASSERT_EQ(stages.size(), 2u);
  const Stage& final_stage = stages[1];
  std::set<std::string> copied_from_builder;
  for (const std::string& copy : final_stage.args("COPY")) {
    std::istringstream words(copy);
    std::vector<std::string> parts;
    for (std::string word; words >> word;) parts.push_back(word);
    if (parts.empty() || parts[0] != "--from=builder") {
      EXPECT_EQ(copy, "packages.txt /tmp/") << "only packages.txt comes from the context";
      continue;
    }
    for (size_t i = 1; i + 1 < parts.size(); ++i) copied_from_builder.insert(parts[i]);
  }
  EXPECT_EQ(copied_from_builder,
            (std::set<std::string>{"/out/bin/capture-controller", "/out/runtime-packages.txt"}));
  const std::vector<std::string> entrypoint = final_stage.args("ENTRYPOINT");
  ASSERT_EQ(entrypoint.size(), 1u);
  // tini (a runtime package) is PID 1 and reaps orphans of kubectl exec; then the binary.
  EXPECT_EQ(entrypoint[0], R"(["/usr/bin/tini", "--", "/usr/local/bin/capture-controller"])");

  static const std::regex toolchain(R"(^(g\+\+|gcc|cpp|clang|cmake|make|binutils)(-[0-9.]+)?$)");
  for (const std::string& package : packagesWithRole("runtime")) {
    EXPECT_FALSE(std::regex_match(package, toolchain)) << package;
    EXPECT_FALSE(package.ends_with("-dev")) << package;
  }
}

TEST(Dockerfile, CarriesOciLabels) {
  const auto stages = dockerfile();
  ASSERT_EQ(stages.size(), 2u);
  std::string labels;
  for (const std::string& label : stages[1].args("LABEL")) labels += label;
  for (const char* key :
       {"org.opencontainers.image.title=", "org.opencontainers.image.description=",
        "org.opencontainers.image.version=", "org.opencontainers.image.revision=",
        "org.opencontainers.image.base.name=\"${BASE_IMAGE}\""}) {
    EXPECT_TRUE(contains(labels, key)) << key;
  }
}

// Each RUN runs under the SHELL the stage sets (bash with pipefail): shellcheck it as such.
TEST(Dockerfile, RunInstructionsPassShellcheck) {
  const testsupport::TempDir temp("dockerfile-run");
  const std::string& dir = temp.path();
  ASSERT_FALSE(dir.empty());
  int index = 0;
  for (const Stage& stage : dockerfile()) {
    bool bash_pipefail = false;
    for (const std::string& shell : stage.args("SHELL")) {
      bash_pipefail |= shell == R"(["/bin/bash", "-o", "pipefail", "-c"])";
    }
    EXPECT_TRUE(bash_pipefail) << stage.from << ": a failing awk must fail the pipe into apt-get";
    for (const std::string& run : stage.args("RUN")) {
      const std::string path = dir + "/dockerfile-run-" + std::to_string(index++) + ".sh";
      std::ofstream(path) << "#!/bin/bash\nset -o pipefail\n" << run << "\n";
      const CommandResult check = runCommand("shellcheck " + shellQuote(path));
      EXPECT_EQ(check.exit_code, 0) << run << "\n" << check.output;
    }
  }
  EXPECT_GT(index, 0);
}

TEST(Dockerfile, DockerignoreLeavesHistoryAndBuildsOut) {
  std::set<std::string> patterns;
  std::istringstream lines(readRepoFile(".dockerignore"));
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') patterns.insert(line);
  }
  for (const char* excluded : {".git", "build*", "out"}) {
    EXPECT_TRUE(patterns.count(excluded)) << excluded;
  }
}

// The derivation the builder stage runs, run here on the binary this build produced: every
// name must be a package installed on this system that ships a library, never a toolchain.
TEST(RuntimePackages, DerivedFromTheBuiltBinaryAreInstalledLibraryPackages) {
  const CommandResult derived =
      runCommand(shellQuote(repoPath("deploy/image/runtime-packages.sh")) + " " +
                 shellQuote(CAPTURE_CONTROLLER_BINARY));
  ASSERT_EQ(derived.exit_code, 0) << derived.output;
  std::vector<std::string> packages;
  std::istringstream lines(derived.output);
  for (std::string line; std::getline(lines, line);) packages.push_back(line);
  ASSERT_FALSE(packages.empty());
  EXPECT_TRUE(std::is_sorted(packages.begin(), packages.end()));

  static const std::regex package_name(R"(^[a-z0-9][a-z0-9.+-]+$)");
  for (const std::string& package : packages) {
    ASSERT_TRUE(std::regex_match(package, package_name)) << "not a package name: " << package;
    const CommandResult status = runCommand("dpkg-query -W -f='${Status}' " + shellQuote(package));
    EXPECT_EQ(status.output, "install ok installed") << package;
    EXPECT_FALSE(package.ends_with("-dev")) << package;
  }
  // What the binary links today, whatever the distribution calls the packages.
  auto any = [&](const std::string& part) {
    return std::any_of(packages.begin(), packages.end(),
                       [&](const std::string& p) { return contains(p, part); });
  };
  EXPECT_TRUE(any("libc6")) << derived.output;
  EXPECT_TRUE(any("libstdc++")) << derived.output;
  EXPECT_TRUE(any("glog")) << derived.output;
}

TEST(RuntimePackages, FailsOnALibraryNoPackageShips) {
  // The loader finds a copy of one of the binary's libraries first: no package ships that file.
  const CommandResult ldd = runCommand("ldd " + shellQuote(CAPTURE_CONTROLLER_BINARY));
  ASSERT_EQ(ldd.exit_code, 0) << ldd.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(ldd.output, m, std::regex(R"(=> (/\S*/(libglog\.so\S*)))")))
      << ldd.output;
  const testsupport::TempDir temp("unpackaged-libs");
  const std::string& dir = temp.path();
  ASSERT_FALSE(dir.empty());
  std::filesystem::copy_file(m[1].str(), dir + "/" + m[2].str(),
                             std::filesystem::copy_options::overwrite_existing);

  const CommandResult derived =
      runCommand("LD_LIBRARY_PATH=" + shellQuote(dir) + " " +
                 shellQuote(repoPath("deploy/image/runtime-packages.sh")) + " " +
                 shellQuote(CAPTURE_CONTROLLER_BINARY));
  EXPECT_NE(derived.exit_code, 0) << derived.output;
  EXPECT_TRUE(contains(derived.output, "no package ships " + dir + "/" + m[2].str()))
      << derived.output;
}

TEST(RuntimePackages, RejectsWhatIsNotAnExecutable) {
  const CommandResult missing =
      runCommand(shellQuote(repoPath("deploy/image/runtime-packages.sh")) + " /nonexistent");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_TRUE(contains(missing.output, "/nonexistent is not an executable")) << missing.output;
}

}  // namespace
}  // namespace ship

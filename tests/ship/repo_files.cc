#include "tests/ship/repo_files.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace ship {

std::string repoPath(const std::string& relative) {
  return std::string(SHIP_SOURCE_DIR) + "/" + relative;
}

std::string readRepoFile(const std::string& relative) {
  std::ifstream in(repoPath(relative));
  if (!in) {
    ADD_FAILURE() << "cannot read " << repoPath(relative);
    return "";
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

CommandResult runCommand(const std::string& shell_command) {
  CommandResult result;
  FILE* pipe = ::popen((shell_command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), n);
  }
  const int status = ::pclose(pipe);
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

std::string shellQuote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

std::vector<std::string> packagesWithRole(const std::string& role) {
  std::vector<std::string> packages;
  std::istringstream lines(readRepoFile("packages.txt"));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name, roles;
    if (!(fields >> name >> roles)) continue;
    std::istringstream role_list(roles);
    std::string one;
    while (std::getline(role_list, one, ',')) {
      if (one == role) packages.push_back(name);
    }
  }
  return packages;
}

std::map<std::string, std::string> kindScriptNames() {
  static const std::regex with_default(R"(^([A-Z_]+)=\$\{([A-Z_]+):-([^}$]*)\}$)");
  static const std::regex plain(R"(^([A-Z_]+)=([^$\s"'`]+)$)");
  std::map<std::string, std::string> names;
  std::istringstream lines(readRepoFile("kind/common.sh"));
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (std::regex_match(line, m, with_default) && m[1] == m[2]) {
      names[m[1]] = m[3];
    } else if (std::regex_match(line, m, plain)) {
      names[m[1]] = m[2];
    }
  }
  return names;
}

std::string fixtureKubectl() {
  namespace fs = std::filesystem;
  std::error_code error;
  std::string newest;
  fs::file_time_type newest_time;
  for (const auto& entry : fs::directory_iterator(KUBECTL_DEBS_DIR, error)) {
    if (entry.path().filename().string().rfind("kubectl_", 0) != 0) continue;
    const fs::path marker = entry.path() / ".unpacked";
    const fs::path kubectl = entry.path() / "usr/bin/kubectl";
    if (!fs::exists(marker, error) || !fs::exists(kubectl, error)) continue;
    const fs::file_time_type time = fs::last_write_time(marker, error);
    if (newest.empty() || time > newest_time) {
      newest = kubectl.string();
      newest_time = time;
    }
  }
  return newest;
}

std::set<std::string> binaryFlags(const std::string& defined_in) {
  const CommandResult xml = runCommand(shellQuote(CAPTURE_CONTROLLER_BINARY) + " --helpxml");
  // <flag><file>path/flags.cc</file><name>capture_dir</name>...
  static const std::regex flag(R"(<file>([^<]*)</file>\s*<name>([a-z0-9_]+)</name>)");
  std::set<std::string> names;
  for (std::sregex_iterator it(xml.output.begin(), xml.output.end(), flag), end; it != end; ++it) {
    if ((*it)[1].str().ends_with(defined_in)) names.insert((*it)[2]);
  }
  return names;
}

}  // namespace ship

// The docs as users and developers read them: README.md, docs/*.md and every folder's README.md.
// Their relative links lead somewhere, the repository paths they name exist, the flags and
// subcommands they document are the binary's, and the README keeps the lines that CI (.ci/run)
// and the hook that greps it rely on.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/ship/repo_files.h"

namespace ship {
namespace {

namespace fs = std::filesystem;

// A backticked word that starts with one of these folders, or is one of these files, is a path
// from the repository's root. The folders are also where folder README.md files are looked for.
const std::vector<std::string> kTopLevelFolders = {
    "cmd/",    "base/", "proc/",  "cri/",         "k8s/",  "capture/",  "worker/", "status/",
    "deploy/", "kind/", "tests/", "third_party/", "docs/", "evidence/", "follow/", "plugin/",
};
// .ci/ as a folder, so that a misspelt `.ci/run` is caught too.
const std::set<std::string> kTopLevelFiles = {"Dockerfile", "packages.txt"};
const std::string kCiFolder = ".ci/";
// glog's flags that --help shows beside ours (cmd/capture-controller/main.cc).
const std::set<std::string> kLoggingFlags = {"v", "vmodule", "minloglevel", "logtostderr"};

// docs/*.md, relative to the root; the test fails when there is no docs/.
std::vector<std::string> docsPages() {
  std::vector<std::string> pages;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(repoPath("docs"), error)) {
    if (entry.path().extension() == ".md") {
      pages.push_back("docs/" + entry.path().filename().string());
    }
  }
  EXPECT_FALSE(pages.empty()) << "no docs/*.md: " << error.message();
  return pages;
}

// README.md, docs/*.md and every README.md under the top-level folders, relative to the root.
std::vector<std::string> docFiles() {
  std::vector<std::string> files = {"README.md"};
  for (const std::string& page : docsPages()) files.push_back(page);
  for (const std::string& folder : kTopLevelFolders) {
    if (folder == "docs/" || !fs::is_directory(repoPath(folder))) continue;
    for (const auto& entry : fs::recursive_directory_iterator(repoPath(folder))) {
      if (entry.path().filename() == "README.md") {
        files.push_back(fs::relative(entry.path(), repoPath("")).string());
      }
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> linesOf(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool isBlank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); });
}

struct Line {
  std::string text;
  bool code = false;  // in a fenced code block, or in an indented one
};

// The lines of `text`, each marked as code when in a fenced code block or in an indented one
// (4 spaces after a blank line; a list item's continuation is not one), else as prose (tables
// and headings included).
std::vector<Line> classifiedLines(const std::string& text) {
  std::vector<Line> lines;
  bool fenced = false, indented = false, after_blank = true;
  for (const std::string& line : linesOf(text)) {
    if (line.starts_with("```")) {
      fenced = !fenced;
      lines.push_back({line, true});
    } else {
      indented = !fenced && line.starts_with("    ") && (after_blank || indented);
      lines.push_back({line, fenced || indented});
    }
    after_blank = isBlank(line);
  }
  return lines;
}

std::vector<std::string> proseLines(const std::string& text) {
  std::vector<std::string> prose;
  for (const Line& line : classifiedLines(text)) {
    if (!line.code) prose.push_back(line.text);
  }
  return prose;
}

// The `code spans` of a prose line.
std::vector<std::string> codeSpans(const std::string& line) {
  static const std::regex span("`([^`]+)`");
  std::vector<std::string> spans;
  for (std::sregex_iterator it(line.begin(), line.end(), span), end; it != end; ++it) {
    spans.push_back((*it)[1]);
  }
  return spans;
}

// What `text` shows as code: its code blocks' lines and its prose's code spans.
std::vector<std::string> codeOf(const std::string& text) {
  std::vector<std::string> code;
  for (const Line& line : classifiedLines(text)) {
    if (line.code) {
      code.push_back(line.text);
    } else {
      for (const std::string& span : codeSpans(line.text)) code.push_back(span);
    }
  }
  return code;
}

struct Link {
  std::string file;    // relative to the repository's root, "#..." removed
  std::string anchor;  // without the '#'; empty when none
};

// The relative [text](target) links of a prose line, outside code spans, resolved against the
// folder of `doc`. Links to other sites and to the same page are left out.
std::vector<Link> relativeLinks(const std::string& doc, const std::string& line) {
  static const std::regex span("`[^`]+`");
  static const std::regex link(R"(\]\(([^)\s]+)\))");
  const std::string text = std::regex_replace(line, span, "``");
  std::vector<Link> links;
  for (std::sregex_iterator it(text.begin(), text.end(), link), end; it != end; ++it) {
    const std::string target = (*it)[1];
    if (target.starts_with("http://") || target.starts_with("https://") ||
        target.starts_with("mailto:") || target.starts_with("#")) {
      continue;
    }
    const size_t hash = target.find('#');
    const fs::path file = fs::path(doc).parent_path() / target.substr(0, hash);
    links.push_back({file.lexically_normal().string(),
                     hash == std::string::npos ? "" : target.substr(hash + 1)});
  }
  return links;
}

// GitHub's anchor for a heading: lower case, punctuation dropped, spaces turned into dashes.
std::string anchorOf(const std::string& heading) {
  std::string anchor;
  for (unsigned char c : heading) {
    if (std::isalnum(c) || c == '-' || c == '_' || c >= 0x80) {
      anchor += static_cast<char>(std::tolower(c));
    } else if (c == ' ') {
      anchor += '-';
    }
  }
  return anchor;
}

std::set<std::string> anchorsOf(const std::string& doc) {
  std::set<std::string> anchors;
  for (const std::string& line : proseLines(readRepoFile(doc))) {
    const size_t text = line.find_first_not_of('#');
    if (text == 0 || text == std::string::npos || line[text] != ' ') continue;
    anchors.insert(anchorOf(line.substr(text + 1)));
  }
  return anchors;
}

// The repository paths a code span names: its words that start with a top-level folder, or
// that are a top-level file, with a trailing :line removed. Globs and <placeholders> are left
// out.
std::vector<std::string> repositoryPaths(const std::string& span) {
  static const std::regex line_number(":[0-9]+(-[0-9]+)?$");
  std::vector<std::string> paths;
  std::istringstream words(span);
  for (std::string word; words >> word;) {
    const bool in_folder =
        word.starts_with(kCiFolder) ||
        std::any_of(kTopLevelFolders.begin(), kTopLevelFolders.end(),
                    [&](const std::string& folder) { return word.starts_with(folder); });
    if (!in_folder && !kTopLevelFiles.contains(word)) continue;
    if (word.find('*') != std::string::npos || word.find('<') != std::string::npos) continue;
    paths.push_back(std::regex_replace(word, line_number, ""));
  }
  return paths;
}

TEST(Docs, EveryRelativeLinkLeadsToAFileAndItsHeading) {
  size_t checked = 0;
  for (const std::string& doc : docFiles()) {
    for (const std::string& line : proseLines(readRepoFile(doc))) {
      for (const Link& link : relativeLinks(doc, line)) {
        ++checked;
        EXPECT_TRUE(fs::exists(repoPath(link.file)))
            << doc << " links to " << link.file << ", which does not exist:\n  " << line;
        if (!link.anchor.empty() && link.file.ends_with(".md") && fs::exists(repoPath(link.file))) {
          EXPECT_TRUE(anchorsOf(link.file).contains(link.anchor))
              << doc << " links to " << link.file << "#" << link.anchor
              << ", a heading that page does not have:\n  " << line;
        }
      }
    }
  }
  EXPECT_GE(checked, 10u) << "hardly any links found: is the Markdown still read right?";
}

TEST(Docs, ReadmeLinksEveryPageOfDocs) {
  std::set<std::string> linked;
  for (const std::string& line : proseLines(readRepoFile("README.md"))) {
    for (const Link& link : relativeLinks("README.md", line)) linked.insert(link.file);
  }
  for (const std::string& page : docsPages()) {
    EXPECT_TRUE(linked.contains(page)) << "README.md's \"Where to read more\" misses " << page;
  }
}

TEST(Docs, EveryRepositoryPathInBackticksExists) {
  size_t checked = 0;
  for (const std::string& doc : docFiles()) {
    for (const std::string& line : proseLines(readRepoFile(doc))) {
      for (const std::string& span : codeSpans(line)) {
        for (const std::string& path : repositoryPaths(span)) {
          ++checked;
          EXPECT_TRUE(fs::exists(repoPath(path)))
              << doc << " names `" << path << "`, which does not exist:\n  " << line;
        }
      }
    }
  }
  EXPECT_GE(checked, 20u) << "hardly any paths found: is the Markdown still read right?";
}

// The rows of the table in `doc` whose header's first cell is `first_header`, separator left
// out; each row as its cells.
std::vector<std::vector<std::string>> tableRows(const std::string& doc,
                                                const std::string& first_header) {
  std::vector<std::vector<std::string>> rows;
  bool in_table = false;
  for (const std::string& line : proseLines(readRepoFile(doc))) {
    if (!line.starts_with("|")) {
      if (in_table) break;
      continue;
    }
    std::vector<std::string> cells;
    std::istringstream in(line.substr(1));
    for (std::string cell; std::getline(in, cell, '|');) {
      const size_t begin = cell.find_first_not_of(' ');
      const size_t end = cell.find_last_not_of(' ');
      cells.push_back(begin == std::string::npos ? "" : cell.substr(begin, end - begin + 1));
    }
    if (!in_table) {
      in_table = !cells.empty() && cells[0] == first_header;
    } else if (!cells.empty() && !cells[0].starts_with("---")) {
      rows.push_back(cells);
    }
  }
  return rows;
}

std::string dashed(std::string flag) {
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

TEST(Docs, TheFlagsTableOfOperationsNamesOnlyTheBinarysFlags) {
  const std::set<std::string> ours = binaryFlags("cmd/capture-controller/flags.cc");
  ASSERT_TRUE(ours.contains("capture_dir")) << "no flag list from --helpxml";
  std::set<std::string> known = ours;
  for (const std::string& flag : binaryFlags()) {
    if (kLoggingFlags.contains(flag)) known.insert(flag);
  }

  const auto rows = tableRows("docs/operations.md", "flag");
  ASSERT_GE(rows.size(), 8u) << "docs/operations.md has no table whose first column is `flag`";
  static const std::regex flag("`--([a-z0-9-]+)`");
  size_t flags = 0;
  for (const auto& row : rows) {
    for (std::sregex_iterator it(row[0].begin(), row[0].end(), flag), end; it != end; ++it) {
      std::string name = (*it)[1];
      std::replace(name.begin(), name.end(), '-', '_');
      ++flags;
      EXPECT_TRUE(known.contains(name)) << "docs/operations.md's flags table names --" << (*it)[1]
                                        << ", which the binary does not have";
    }
  }
  EXPECT_GE(flags, rows.size());
}

TEST(Docs, OperationsDocumentsEveryFlagOfTheBinary) {
  const std::string operations = readRepoFile("docs/operations.md");
  const std::set<std::string> ours = binaryFlags("cmd/capture-controller/flags.cc");
  ASSERT_TRUE(ours.contains("capture_dir")) << "no flag list from --helpxml";
  for (const std::string& name : ours) {
    EXPECT_TRUE(std::regex_search(operations, std::regex("--" + dashed(name) + "(?![a-z0-9-])")))
        << "docs/operations.md does not mention --" << dashed(name);
  }
}

TEST(Docs, EverySubcommandShownIsOneTheBinaryRuns) {
  // An unknown command makes the binary print its commands: "usage: capture-controller [run |
  // captures | sandbox] ...".
  const CommandResult unknown =
      runCommand(shellQuote(CAPTURE_CONTROLLER_BINARY) + " no-such-command");
  std::smatch usage;
  ASSERT_TRUE(std::regex_search(unknown.output, usage,
                                std::regex(R"(usage: capture-controller \[([a-z |]+)\])")))
      << unknown.output;
  std::set<std::string> commands;
  std::istringstream words(usage[1].str());
  for (std::string word; words >> word;) {
    if (word != "|") commands.insert(word);
  }

  static const std::regex shown(R"(capture-controller ([a-z][a-z-]*)\b)");
  size_t checked = 0;
  for (const std::string& doc : docFiles()) {
    for (const std::string& code : codeOf(readRepoFile(doc))) {
      for (std::sregex_iterator it(code.begin(), code.end(), shown), end; it != end; ++it) {
        ++checked;
        EXPECT_TRUE(commands.contains((*it)[1]))
            << doc << " shows `capture-controller " << (*it)[1]
            << "`, not a command of the binary (" << usage[1] << "):\n  " << code;
      }
    }
  }
  EXPECT_GE(checked, 2u) << "no subcommand found in the docs' code";
}

TEST(Docs, ReadmeIsShortAndKeepsTheLinesOthersRelyOn) {
  const std::string readme = readRepoFile("README.md");
  const std::vector<std::string> lines = linesOf(readme);
  EXPECT_LE(lines.size(), 130u) << "README.md is the front page: move details to docs/";
  // .ci/run runs it, and a hook greps the README for this very line.
  EXPECT_NE(std::find(lines.begin(), lines.end(), "    tests/run-all.sh"), lines.end())
      << "README.md lost the line `    tests/run-all.sh`";
  EXPECT_NE(readme.find("OUT_DIR=evidence kind/verify.sh"), std::string::npos)
      << "README.md lost how to regenerate evidence/";
}

}  // namespace
}  // namespace ship

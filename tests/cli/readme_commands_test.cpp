// The README's command table against the binary: every command (and decode's
// subcommands) `pagelab --help` lists has a row, and every long option its --help lists
// is named in that row. A command or option added without a word in the README fails.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/cli_help.hpp"
#include "cli/run_pagelab.hpp"

namespace pagelab::test {
namespace {

// The rows of the table under "## Commands" that start with "| `pagelab ".
std::vector<std::string> command_rows() {
  std::ifstream in(PAGELAB_SOURCE_DIR "/README.md");
  std::vector<std::string> rows;
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("## ", 0) == 0) inside = line == "## Commands";
    if (inside && line.rfind("| `pagelab ", 0) == 0) rows.push_back(line);
  }
  return rows;
}

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> parts;
  std::size_t from = 0;
  for (auto at = text.find(sep); at != std::string::npos; at = text.find(sep, from)) {
    parts.push_back(text.substr(from, at - from));
    from = at + sep.size();
  }
  parts.push_back(text.substr(from));
  return parts;
}

// Rows by the command path their synopsis starts with: "run", "decode cr0". A row may
// name alternatives (`decode cr0\|cr4\|efer`): it counts for each.
std::map<std::string, std::string> rows_by_path(const std::vector<std::string>& subcommand_of) {
  std::map<std::string, std::string> rows;
  for (const auto& row : command_rows()) {
    std::istringstream words(row.substr(std::string("| `pagelab ").size()));
    std::string command, second;
    words >> command >> second;
    rows[command] += row;
    bool has_subcommands = false;
    for (const auto& c : subcommand_of) has_subcommands = has_subcommands || c == command;
    if (!has_subcommands) continue;
    for (const auto& sub : split(second, "\\|")) rows[command + " " + sub] += row;
  }
  return rows;
}

// `--name` as a whole option in `text`, not the start of a longer one (--no-routes is not
// --no-routes-only).
bool names_option(const std::string& text, const std::string& option) {
  for (auto at = text.find(option); at != std::string::npos; at = text.find(option, at + 1)) {
    const auto end = at + option.size();
    const char next = end < text.size() ? text[end] : ' ';
    if (!(std::isalnum(static_cast<unsigned char>(next)) || next == '-')) return true;
  }
  return false;
}

TEST(ReadmeCommands, TheTableHasARowForEveryCommandTheBinaryLists) {
  const auto commands = help_subcommands();
  ASSERT_GE(commands.size(), 10U) << "pagelab --help lists too few commands to be its help";
  std::vector<std::string> with_subcommands;
  for (const auto& c : commands) {
    if (!help_subcommands({c}).empty()) with_subcommands.push_back(c);
  }
  const auto rows = rows_by_path(with_subcommands);
  ASSERT_FALSE(rows.empty()) << "no '| `pagelab ...' row under '## Commands' in README.md";
  for (const auto& path : command_paths()) {
    EXPECT_TRUE(rows.count(joined(path)) != 0)
        << "README.md's command table has no row for `pagelab " << joined(path) << "`";
  }
  // And no row for a command the binary does not have.
  for (const auto& [path, row] : rows) {
    bool exists = false;
    for (const auto& p : command_paths()) exists = exists || joined(p) == path;
    EXPECT_TRUE(exists) << "README.md has a row for `pagelab " << path
                        << "`, which pagelab --help does not list";
  }
}

TEST(ReadmeCommands, EachRowNamesEveryOptionOfItsCommand) {
  std::vector<std::string> with_subcommands;
  for (const auto& c : help_subcommands()) {
    if (!help_subcommands({c}).empty()) with_subcommands.push_back(c);
  }
  const auto rows = rows_by_path(with_subcommands);
  for (const auto& path : command_paths()) {
    const auto row = rows.find(joined(path));
    if (row == rows.end()) continue;  // the test above reports it
    for (const auto& option : help_long_options(path)) {
      EXPECT_TRUE(names_option(row->second, option))
          << "README.md's row for `pagelab " << joined(path) << "` does not name " << option
          << " (pagelab " << joined(path) << " --help lists it)";
    }
  }
}

TEST(ReadmeCommands, OptionsIssueThirteenFoundMissingAreNamed) {
  // Issue 13, item 10: the table missed these; they are options of the binary.
  const std::vector<std::pair<std::string, std::string>> wanted = {
      {"run", "--verbose"}, {"decode cr0", "--cr4"}, {"decode cr0", "--efer"},
      {"crash", "--bytes"}, {"modes", "--quiet"},    {"modes", "--routes-only"}};
  const auto rows = rows_by_path({"decode"});
  for (const auto& [path, option] : wanted) {
    ASSERT_TRUE(rows.count(path)) << path;
    EXPECT_TRUE(names_option(rows.at(path), option)) << path << " " << option;
  }
  EXPECT_TRUE(contains(rows.at("run"), "`-v`"));
}

}  // namespace
}  // namespace pagelab::test

#pragma once
// What `pagelab [CMD...] --help` lists, read from the real binary: the commands and
// subcommands, and each one's long options. The README, man page and completion tests
// compare against these, so a command added to the binary is checked everywhere.
#include <sstream>
#include <string>
#include <vector>

#include "cli/run_pagelab.hpp"

namespace pagelab::test {

inline std::string help_text(const std::vector<std::string>& path) {
  auto args = path;
  args.emplace_back("--help");
  return run_pagelab(args).out;
}

// The lines of one section ("Options:", "Subcommands:") of a help text: those after its
// heading up to the next line that does not start with a space.
inline std::vector<std::string> help_section(const std::string& help, const std::string& heading) {
  std::vector<std::string> lines;
  std::istringstream in(help);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line == heading) {
      inside = true;
    } else if (!line.empty() && line[0] != ' ') {
      inside = false;
    } else if (inside && !line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

// Names listed under "Subcommands:" (a name starts at column 2; deeper lines continue
// the description above).
inline std::vector<std::string> help_subcommands(const std::vector<std::string>& path = {}) {
  std::vector<std::string> names;
  for (const auto& line : help_section(help_text(path), "Subcommands:")) {
    if (line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    names.push_back(line.substr(2, line.find(' ', 2) - 2));
  }
  return names;
}

// Long options under "Options:" (the first word of a line: "-j,--jobs", "--json"),
// without --help.
inline std::vector<std::string> help_long_options(const std::vector<std::string>& path) {
  std::vector<std::string> options;
  for (const auto& line : help_section(help_text(path), "Options:")) {
    if (line.compare(0, 3, "  -") != 0) continue;
    const auto names = line.substr(2, line.find(' ', 2) - 2);
    const auto at = names.find("--");
    if (at == std::string::npos) continue;
    const auto name = names.substr(at);
    if (name != "--help") options.push_back(name);
  }
  return options;
}

// Every command path: {"run"}, {"decode"}, {"decode", "pte"}, ...
inline std::vector<std::vector<std::string>> command_paths() {
  std::vector<std::vector<std::string>> paths;
  for (const auto& command : help_subcommands()) {
    paths.push_back({command});
    for (const auto& sub : help_subcommands({command})) paths.push_back({command, sub});
  }
  return paths;
}

inline std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
  return text;
}

}  // namespace pagelab::test

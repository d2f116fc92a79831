// `pagelab run` arguments: FILE or FILE:LINE (run_targets.hpp).
#include "run_targets.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <filesystem>

#include "commands.hpp"
#include "output.hpp"

namespace pagelab::cli {

namespace {

namespace sc = lab::scenario;

// "FILE:LINE" when FILE exists and LINE is a number; a file whose name ends in ":12"
// is still a file.
std::optional<std::pair<std::string, unsigned>> split_line(const std::string& argument) {
  std::error_code ec;
  if (std::filesystem::exists(argument, ec)) return std::nullopt;
  const auto colon = argument.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == argument.size()) return std::nullopt;
  unsigned line = 0;
  const char* first = argument.data() + colon + 1;
  const char* last = argument.data() + argument.size();
  const auto [end, err] = std::from_chars(first, last, line);
  if (err != std::errc() || end != last || line == 0) return std::nullopt;
  return std::pair{argument.substr(0, colon), line};
}

bool is_access(const sc::Statement& s) {
  return std::holds_alternative<sc::AccessStep>(s.action);
}

std::string access_lines(const sc::Scenario& s) {
  std::string out;
  unsigned shown = 0;
  for (const auto& st : s.statements) {
    if (!is_access(st)) continue;
    if (++shown > 12) {
      out += ", ...";
      break;
    }
    out += fmt::format("{}{}", out.empty() ? "" : ", ", st.where.line);
  }
  return out;
}

// Keeps the statements up to the access that `line` names (its line, or the line of
// one of its `expect`s); the accesses before it lose their expectations: they run for
// the history they make, and only the chosen one is judged against its `expect` lines.
sc::Scenario cut_at_line(sc::Scenario s, unsigned& line) {
  auto names = [line](const sc::Statement& st) {
    if (st.where.line == line) return true;
    const auto* step = std::get_if<sc::AccessStep>(&st.action);
    return step != nullptr &&
           std::any_of(step->expects.begin(), step->expects.end(),
                       [line](const sc::Expect& e) { return e.where.line == line; });
  };
  const auto it = std::find_if(s.statements.begin(), s.statements.end(), names);
  if (it == s.statements.end() || !is_access(*it)) {
    throw UsageError(fmt::format("{}:{}: no access on that line (accesses are on lines {})",
                                 printable(s.file), line, access_lines(s)));
  }
  line = it->where.line;
  s.statements.erase(it + 1, s.statements.end());
  for (auto st = s.statements.begin(); st + 1 != s.statements.end(); ++st) {
    if (auto* step = std::get_if<sc::AccessStep>(&st->action)) step->expects.clear();
  }
  return s;
}

}  // namespace

std::vector<RunTarget> load_run_targets(const std::vector<std::string>& arguments,
                                        bool heads_only) {
  std::vector<RunTarget> targets;
  for (const auto& argument : arguments) {
    RunTarget t;
    t.argument = argument;
    std::string file = argument;
    if (auto split = split_line(argument)) {
      file = split->first;
      t.line = split->second;
    }
    std::error_code ec;
    if (std::filesystem::is_directory(file, ec)) {
      throw UsageError(fmt::format("{}: is a directory (give the .pgl files in it, e.g. {}/*.pgl)",
                                   printable(file), printable(file)));
    }
    try {
      t.head_only = heads_only && !t.line;
      t.scenario = t.head_only ? sc::scan_scenario(file) : sc::load_scenario(file);
    } catch (const sc::ScenarioError& e) {
      throw UsageError(e.what());
    }
    if (std::none_of(t.scenario.statements.begin(), t.scenario.statements.end(), is_access)) {
      throw UsageError(
          fmt::format("{}: no access to run (a scenario needs at least one read, write or fetch){}",
                      printable(file), t.scenario.statements.empty() ? ": the file is empty" : ""));
    }
    if (t.line) t.scenario = cut_at_line(std::move(t.scenario), *t.line);  // the access's line
    for (const auto& w : t.scenario.warnings)
      fmt::print(stderr, "pagelab: {}\n", printable(w, 1000));
    targets.push_back(std::move(t));
  }
  return targets;
}

namespace {

bool on_line(const sc::AccessResult& a, unsigned line) {
  return a.where.line == line;
}

void recompute_verdict(sc::ScenarioResult& r) {
  if (r.count(sc::Verdict::Failed) > 0) {
    r.verdict = sc::Verdict::Failed;
  } else if (!r.accesses.empty() && r.count(sc::Verdict::Skipped) == r.accesses.size()) {
    r.verdict = sc::Verdict::Skipped;
  } else if (r.verdict != sc::Verdict::Skipped || !r.accesses.empty()) {
    r.verdict = sc::Verdict::Passed;
  }
}

}  // namespace

void keep_only_line(sc::ScenarioResult& result, unsigned line) {
  // The scenario was cut after the chosen access, so it is the last one that ran.
  if (result.accesses.empty() || !on_line(result.accesses.back(), line)) return;
  sc::AccessResult last = std::move(result.accesses.back());
  result.accesses.clear();
  result.accesses.push_back(std::move(last));
  const bool whole_failed = result.verdict == sc::Verdict::Failed;
  recompute_verdict(result);
  // A scenario that failed before any access ran (its backend never started) still fails.
  if (whole_failed && !result.reason.empty() && result.count(sc::Verdict::Failed) == 0 &&
      result.accesses.front().verdict == sc::Verdict::Skipped) {
    result.verdict = sc::Verdict::Failed;
  }
}

void keep_only_line(sc::ScenarioComparison& comparison, unsigned line) {
  keep_only_line(comparison.oracle, line);
  for (auto& r : comparison.results) keep_only_line(r, line);
  if (!comparison.cases.empty()) {
    auto last = std::move(comparison.cases.back());
    comparison.cases.clear();
    comparison.cases.push_back(std::move(last));
  }
}

}  // namespace pagelab::cli

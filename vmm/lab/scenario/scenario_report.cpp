// The readable and the JSON form of a scenario's result.
#include <fmt/core.h>

#include <algorithm>

#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::lab::scenario {

namespace {

std::string location_text(const Location& l) {
  return fmt::format("{}:{}", l.file, l.line);
}

}  // namespace

std::string format_report(const ScenarioResult& result, bool verbose) {
  std::string out = fmt::format("== {} ({}){}\n", result.file, result.backend,
                                result.title.empty() ? "" : ": " + result.title);
  if (result.verdict != Verdict::Passed && !result.reason.empty()) {
    out += fmt::format("   {}: {}\n", to_string(result.verdict), result.reason);
  }
  for (const auto& a : result.accesses) {
    const char* mark = a.verdict == Verdict::Passed   ? "ok  "
                       : a.verdict == Verdict::Failed ? "FAIL"
                       : !a.deviation.empty()         ? "dev "
                                                      : "skip";
    // Without a CPU the oracle's answer is the result; with one, the CPU's.
    std::string what =
        a.observed.empty() ? (a.allowed.empty() ? "" : a.allowed.front()) : a.observed;
    out += fmt::format("{} {:<28} {} -> {}", mark, location_text(a.where), a.text, what);
    if (!a.observed.empty() && !a.allowed.empty()) {
      out +=
          fmt::format("  (oracle: {}{})", a.allowed.front(),
                      a.allowed.size() > 1 ? fmt::format(" +{} stale", a.allowed.size() - 1) : "");
    } else if (a.allowed.size() > 1) {
      out += fmt::format("  (or {})", a.allowed[1]);
    }
    out += "\n";
    const bool check_failed = std::any_of(a.checks.begin(), a.checks.end(),
                                          [](const CheckResult& c) { return !c.passed; });
    if (!a.deviation.empty() ||
        (a.verdict == Verdict::Failed && (a.disagrees || (!check_failed && !a.reason.empty())))) {
      out += fmt::format("     {}\n", a.reason);
    } else if (a.verdict == Verdict::Skipped && !a.reason.empty() && result.reason != a.reason) {
      out += fmt::format("     skipped: {}\n", a.reason);
    }
    for (const auto& c : a.checks) {
      if (c.passed) {
        if (verbose) out += fmt::format("     ok   {}  {}\n", location_text(c.where), c.text);
        continue;
      }
      // On a skipped access only a scenario bug counts; the rest is information.
      const bool counted = a.verdict != Verdict::Skipped || c.contradicts_architecture;
      out += fmt::format(
          "     {} {}:{}: {}{}\n", counted ? "FAIL" : "not met (skipped)", c.where.file,
          c.where.line, c.text,
          c.contradicts_architecture ? "  <- contradicts the architecture (scenario bug)" : "");
      out += c.diff;
    }
    if (a.verdict != Verdict::Passed && !a.backend_report.empty()) {
      out += "     the engine's account:\n" + a.backend_report + "\n";
    }
  }
  const unsigned known = result.known_deviations();
  out += fmt::format(
      "   {}: {} passed, {} failed, {} skipped{}\n", to_string(result.verdict),
      result.count(Verdict::Passed), result.count(Verdict::Failed), result.count(Verdict::Skipped),
      known == 0 ? "" : fmt::format(" ({} known deviation{})", known, known == 1 ? "" : "s"));
  return out;
}

nlohmann::json ScenarioResult::to_json() const {
  nlohmann::json j;
  j["file"] = file;
  j["title"] = title;
  j["backend"] = backend;
  j["verdict"] = to_string(verdict);
  if (!reason.empty()) j["reason"] = reason;
  j["passed"] = count(Verdict::Passed);
  j["failed"] = count(Verdict::Failed);
  j["skipped"] = count(Verdict::Skipped);
  j["known_deviations"] = known_deviations();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : accesses) {
    nlohmann::json x;
    x["line"] = a.where.line;
    x["access"] = a.text;
    x["verdict"] = to_string(a.verdict);
    if (!a.reason.empty()) x["reason"] = a.reason;
    if (!a.observed.empty()) x["observed"] = a.observed;
    if (!a.observed.empty()) x["disagrees"] = a.disagrees;
    if (!a.deviation.empty()) x["deviation"] = a.deviation;
    x["allowed"] = a.allowed;
    nlohmann::json walk = nlohmann::json::array();
    for (const auto& s : a.walk) {
      walk.push_back({{"level", s.level},
                      {"intel", s.intel_name},
                      {"linux", s.linux_name},
                      {"index", s.index},
                      {"entry_address", s.entry_address.value()},
                      {"value", s.value},
                      {"meaning", s.meaning}});
    }
    x["walk"] = walk;
    if (!a.fault_reason.empty()) x["fault_reason"] = a.fault_reason;
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : a.checks) {
      nlohmann::json cj = {{"line", c.where.line}, {"expect", c.text}, {"passed", c.passed}};
      if (!c.passed) {
        cj["contradicts_architecture"] = c.contradicts_architecture;
        cj["diff"] = c.diff;
      }
      checks.push_back(cj);
    }
    x["checks"] = checks;
    if (!a.backend_report.empty()) x["engine_report"] = a.backend_report;
    list.push_back(x);
  }
  j["accesses"] = list;
  return j;
}

}  // namespace pagelab::lab::scenario

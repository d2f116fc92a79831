// The readable and the JSON form of a scenario's result.
#include <fmt/core.h>

#include <algorithm>

#include "pagelab/lab/report/json.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::lab::scenario {

namespace {

std::string location_text(const Location& l) {
  return fmt::format("{}:{}", l.file, l.line);
}

}  // namespace

std::string format_report_title(const ScenarioResult& result) {
  return fmt::format("== {} ({}){}\n", result.file, result.backend,
                     result.title.empty() ? "" : ": " + result.title);
}

namespace {

std::string reason_line(const ScenarioResult& result) {
  if (result.verdict == Verdict::Passed || result.reason.empty()) return {};
  return fmt::format("   {}: {}\n", to_string(result.verdict), result.reason);
}

std::string summary_line(const ScenarioResult& result) {
  const unsigned known = result.known_deviations();
  return fmt::format(
      "   {}: {} passed, {} failed, {} skipped{}\n", result.verdict_name(),
      result.count(Verdict::Passed), result.count(Verdict::Failed),
      result.count(Verdict::Skipped) - known,
      known == 0 ? "" : fmt::format(", {} known deviation{}", known, known == 1 ? "" : "s"));
}

}  // namespace

std::string format_report_end(const ScenarioResult& result) {
  return reason_line(result) + summary_line(result);
}

std::string format_report(const ScenarioResult& result, bool verbose) {
  std::string out = format_report_title(result) + reason_line(result);
  for (const auto& a : result.accesses) out += format_access(result, a, verbose);
  return out + summary_line(result);
}

std::string format_access(const ScenarioResult& result, const AccessResult& a, bool verbose) {
  std::string out;
  const char* mark = a.verdict == Verdict::Passed   ? "ok  "
                     : a.verdict == Verdict::Failed ? "FAIL"
                     : !a.deviation.empty()         ? "dev "
                                                    : "skip";
  // Without a CPU the oracle's answer is the result; with one, the CPU's.
  std::string what = a.observed.empty() ? (a.allowed.empty() ? "" : a.allowed.front()) : a.observed;
  out += fmt::format("{} {:<28} {} -> {}", mark, location_text(a.where), a.text, what);
  const bool deviation = !a.deviation.empty() && a.verdict != Verdict::Failed;
  if (deviation && !verbose) {
    // One line by default: the name, where, and the command that shows the rest.
    out += fmt::format("  known deviation {}; details: pagelab run {}:{} --backend {} -v\n",
                       a.deviation, a.where.file, a.where.line,
                       result.backend == "qemu-tcg" ? "qemu" : result.backend);
    return out;
  }
  if (!a.observed.empty() && !a.allowed.empty()) {
    out += fmt::format("  (oracle: {}{})", a.allowed.front(),
                       a.allowed.size() > 1 ? fmt::format(" +{} stale", a.allowed.size() - 1) : "");
  } else if (a.allowed.size() > 1) {
    out += fmt::format("  (or {})", a.allowed[1]);
  }
  out += "\n";
  const bool check_failed =
      std::any_of(a.checks.begin(), a.checks.end(), [](const CheckResult& c) { return !c.passed; });
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
        "     {} {}:{}: {}{}\n", counted ? "FAIL" : "not met (skipped)", c.where.file, c.where.line,
        c.text,
        c.contradicts_architecture ? "  <- contradicts the architecture (scenario bug)" : "");
    out += c.diff;
  }
  if (a.verdict != Verdict::Passed && !a.backend_report.empty()) {
    out += "     the engine's account:\n" + a.backend_report + "\n";
  }
  return out;
}

OutcomeFields outcome_fields(const Observation& o, bool is_read) {
  OutcomeFields f;
  switch (o.kind) {
    case Observation::Kind::Ok:
      f.kind = OutcomeFields::Kind::Ok;
      if (is_read) f.value = o.value;
      break;
    case Observation::Kind::PageFault:
      f.kind = OutcomeFields::Kind::PageFault;
      f.vector = 14;
      f.error_code = o.error_code;
      f.cr2 = o.cr2;
      break;
    case Observation::Kind::GeneralProtection:
      f.kind = OutcomeFields::Kind::GeneralProtection;
      f.vector = 13;
      f.error_code = o.error_code;
      break;
    case Observation::Kind::OtherFault:
      f.kind = OutcomeFields::Kind::Exception;
      f.vector = o.vector;
      f.error_code = o.error_code;
      break;
  }
  return f;
}

OutcomeFields outcome_fields(const AllowedOutcome& a, bool is_read) {
  OutcomeFields f;
  f.stale = a.stale;
  if (const auto* t = std::get_if<paging::Translation>(&a.outcome)) {
    f.kind = OutcomeFields::Kind::Ok;
    f.physical = t->physical.value();
    f.page_size = t->page_size;
    if (is_read && a.value_known) f.value = a.value;
  } else if (const auto* pf = std::get_if<paging::PageFault>(&a.outcome)) {
    f.kind = OutcomeFields::Kind::PageFault;
    f.vector = 14;
    f.error_code = pf->error_code;
    f.cr2 = pf->cr2.value();
  } else if (const auto* gp = std::get_if<paging::GeneralProtection>(&a.outcome)) {
    f.kind = OutcomeFields::Kind::GeneralProtection;
    f.vector = 13;
    f.error_code = gp->error_code;
  }
  return f;
}

nlohmann::json OutcomeFields::to_json(const std::string& text) const {
  using report::hex;
  static constexpr const char* kinds[] = {"ok", "page-fault", "general-protection", "exception"};
  nlohmann::json j{{"kind", kinds[static_cast<int>(kind)]}};
  if (kind != Kind::Ok) {
    j["vector"] = vector;
    j["error_code"] = hex(error_code);
  }
  if (cr2) j["cr2"] = hex(*cr2);
  if (physical) j["physical"] = hex(*physical);
  if (page_size) j["page_size"] = std::string(paging::to_string(*page_size));
  if (value) j["value"] = hex(*value);
  if (stale) j["stale"] = true;
  j["text"] = text;
  return j;
}

std::string_view verdict_name(const AccessResult& a) {
  if (!a.deviation.empty() && a.verdict != Verdict::Failed) {
    return report::to_string(report::CaseVerdict::KnownDeviation);
  }
  return to_string(a.verdict);
}

std::string_view ScenarioResult::verdict_name() const {
  if (verdict != Verdict::Failed && known_deviations() > 0) {
    return report::to_string(report::CaseVerdict::KnownDeviation);
  }
  return to_string(verdict);
}

nlohmann::json walk_json(const std::vector<paging::WalkStep>& walk) {
  using report::hex;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& s : walk) {
    out.push_back({{"level", s.level},
                   {"intel", s.intel_name},
                   {"linux", s.linux_name},
                   {"index", s.index},
                   {"entry_address", hex(s.entry_address.value())},
                   {"value", hex(s.value)},
                   {"meaning", s.meaning}});
  }
  return out;
}

nlohmann::json ScenarioResult::to_json() const {
  nlohmann::json j;
  j["file"] = file;
  j["title"] = title;
  j["backend"] = backend;
  j["verdict"] = verdict_name();
  if (!reason.empty()) j["reason"] = reason;
  if (!warnings.empty()) j["warnings"] = warnings;
  report::VerdictCounts counts;
  nlohmann::json deviations = nlohmann::json::object();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& a : accesses) {
    const auto v = scenario::verdict_name(a);
    counts.add(v == "passed"    ? report::CaseVerdict::Passed
               : v == "failed"  ? report::CaseVerdict::Failed
               : v == "skipped" ? report::CaseVerdict::Skipped
                                : report::CaseVerdict::KnownDeviation);
    if (v == "known-deviation") {
      deviations[a.deviation] = deviations.value(a.deviation, 0) + 1;
    }
    nlohmann::json x;
    x["file"] = a.where.file;
    x["line"] = a.where.line;
    x["access"] = a.text;
    x["verdict"] = v;
    if (!a.reason.empty()) x["reason"] = a.reason;
    if (!a.deviation.empty()) x["deviation"] = a.deviation;
    if (a.observed_fields) {
      x["observed"] = a.observed_fields->to_json(a.observed);
      x["disagrees"] = a.disagrees;
    }
    nlohmann::json allowed = nlohmann::json::array();
    for (std::size_t k = 0; k < a.allowed_fields.size(); ++k) {
      allowed.push_back(
          a.allowed_fields[k].to_json(k < a.allowed.size() ? a.allowed[k] : std::string()));
    }
    x["allowed"] = allowed;
    x["walk"] = walk_json(a.walk);
    if (!a.fault_reason.empty()) x["fault_reason"] = a.fault_reason;
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& c : a.checks) {
      nlohmann::json cj = {
          {"line", c.where.line}, {"expect", c.text}, {"verdict", c.passed ? "passed" : "failed"}};
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
  j["counts"] = counts.json();
  j["known_deviations"] = deviations;
  j["accesses"] = list;
  return j;
}

}  // namespace pagelab::lab::scenario

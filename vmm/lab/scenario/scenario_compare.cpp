#include "pagelab/lab/scenario/scenario_compare.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"
#include "pagelab/lab/report/json.hpp"
#include "pagelab/lab/scenario/engine_machine.hpp"

namespace pagelab::lab::scenario {

namespace {

std::string location_text(const Location& l) {
  return fmt::format("{}:{}", l.file, l.line);
}

BackendCase backend_case(const std::string& backend, const AccessResult& a) {
  BackendCase b;
  b.backend = backend;
  b.verdict = a.verdict;
  b.observed = a.observed;
  b.allowed = a.allowed;
  b.disagrees = a.disagrees;
  b.deviation = a.deviation;
  b.reason = a.reason;
  for (const auto& c : a.checks) {
    if (!c.passed) b.failed_checks.push_back(c);
  }
  b.engine_report = a.backend_report;
  return b;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : std::string(sep)) + p;
  return out;
}

void classify(CaseComparison& c, const AccessResult& by_oracle) {
  std::vector<std::string> failures, known, skipped, ran;
  std::vector<const BackendCase*> passed;
  for (const auto& b : c.backends) {
    if (b.verdict == Verdict::Failed) {
      failures.push_back(b.disagrees ? fmt::format("{} departs from the architecture: {} ({})",
                                                   b.backend, b.observed, b.reason)
                                     : fmt::format("{}: {}", b.backend, b.reason));
    } else if (!b.deviation.empty()) {
      known.push_back(fmt::format("{}: {}", b.backend, b.deviation));
    } else if (b.verdict == Verdict::Skipped) {
      skipped.push_back(fmt::format("{}: {}", b.backend, b.reason));
    } else {
      passed.push_back(&b);
    }
    if (!b.observed.empty()) ran.push_back(fmt::format("{} {}", b.backend, b.observed));
  }
  // A scenario bug fails whatever any CPU does.
  if (by_oracle.verdict == Verdict::Failed) {
    failures.insert(failures.begin(), fmt::format("oracle: {}", by_oracle.reason));
  }
  bool differ = false;
  for (const auto* p : passed) differ = differ || p->observed != passed.front()->observed;

  if (!failures.empty()) {
    c.classification = CaseClass::Failed;
    c.detail = join(failures, "; ");
  } else if (!known.empty()) {
    c.classification = CaseClass::KnownDeviation;
    c.detail = join(known, "; ");
  } else if (passed.empty()) {
    c.classification = CaseClass::Skipped;
    c.detail = c.backends.empty() ? std::string("no backend can run here") : join(skipped, "; ");
  } else if (differ) {
    c.classification = CaseClass::DifferAllowed;
    c.detail = join(ran, " / ");
    c.partial = !skipped.empty();
    if (c.partial) c.detail += "; skipped on " + join(skipped, "; ");
  } else {
    c.classification = CaseClass::Agree;
    c.partial = !skipped.empty();
    if (c.partial) c.detail = "skipped on " + join(skipped, "; ");
  }
}

const char* mark(CaseClass c) {
  switch (c) {
    case CaseClass::Agree:
      return "agree ";
    case CaseClass::DifferAllowed:
      return "differ";
    case CaseClass::KnownDeviation:
      return "known ";
    case CaseClass::Failed:
      return "FAIL  ";
    case CaseClass::Skipped:
      return "skip  ";
  }
  return "?";
}

std::string backend_line(const BackendCase& b) {
  std::string status;
  if (b.verdict == Verdict::Failed) {
    status = b.disagrees ? "DISAGREES with the oracle" : "FAILED: " + b.reason;
  } else if (!b.deviation.empty()) {
    status = "known deviation " + b.deviation;
  } else if (b.verdict == Verdict::Skipped) {
    status = "skipped: " + b.reason;
  } else {
    status = "allowed";
  }
  return fmt::format("{} {}", b.observed.empty() ? "-" : b.observed,
                     b.observed.empty() ? status : "[" + status + "]");
}

const AccessDeviation* deviation_named(const std::string& id) {
  for (const auto& d : known_access_deviations()) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

}  // namespace

std::string_view to_string(CaseClass c) {
  switch (c) {
    case CaseClass::Agree:
      return "agree";
    case CaseClass::DifferAllowed:
      return "differ, both allowed";
    case CaseClass::KnownDeviation:
      return "known deviation";
    case CaseClass::Failed:
      return "FAILED";
    case CaseClass::Skipped:
      return "skipped";
  }
  return "?";
}

BackendSlot backend_slot(BackendKind kind) {
  BackendSlot s;
  s.kind = resolve_backend_kind(kind);
  s.name = std::string(backend_name(s.kind));
  // Auto names both reasons when neither backend can run.
  s.unavailable = backend_unavailable_reason(kind);
  if (s.kind == BackendKind::Kvm) {
    s.description = s.unavailable ? "KVM" : kvm::describe(kvm::detect_flavour());
  } else {
    s.description = "QEMU TCG, -cpu max (" + find_qemu_binary().value_or(qemu_binary_name()) + ")";
  }
  return s;
}

std::vector<BackendSlot> every_backend() {
  return {backend_slot(BackendKind::Kvm), backend_slot(BackendKind::Qemu)};
}

unsigned ScenarioComparison::count(CaseClass c) const {
  return static_cast<unsigned>(std::count_if(
      cases.begin(), cases.end(), [&](const CaseComparison& x) { return x.classification == c; }));
}

unsigned ScenarioComparison::partial() const {
  return static_cast<unsigned>(
      std::count_if(cases.begin(), cases.end(), [](const CaseComparison& x) { return x.partial; }));
}

CaseClass ScenarioComparison::overall() const {
  for (auto c :
       {CaseClass::Failed, CaseClass::KnownDeviation, CaseClass::DifferAllowed, CaseClass::Agree}) {
    if (count(c) > 0) return c;
  }
  return CaseClass::Skipped;
}

ScenarioComparison compare_results(ScenarioResult oracle, std::vector<ScenarioResult> results) {
  ScenarioComparison out;
  out.file = oracle.file;
  out.title = oracle.title;
  for (const auto& r : results) {
    if (r.accesses.size() != oracle.accesses.size()) {
      throw std::logic_error(fmt::format("{}: {} ran {} accesses, the oracle {}", r.file, r.backend,
                                         r.accesses.size(), oracle.accesses.size()));
    }
    out.backends.push_back(r.backend);
  }
  for (std::size_t i = 0; i < oracle.accesses.size(); ++i) {
    const auto& o = oracle.accesses[i];
    CaseComparison c;
    c.where = o.where;
    c.access = o.text;
    c.oracle = o.allowed;
    for (const auto& r : results) {
      BackendCase b = backend_case(r.backend, r.accesses[i]);
      // The whole scenario was skipped on that backend: say why, once per access.
      if (b.verdict == Verdict::Skipped && b.reason.empty()) b.reason = r.reason;
      c.backends.push_back(std::move(b));
    }
    classify(c, o);
    out.cases.push_back(std::move(c));
  }
  out.oracle = std::move(oracle);
  out.results = std::move(results);
  return out;
}

ScenarioComparison compare_scenario(const Scenario& scenario, const std::vector<BackendSlot>& slots,
                                    const std::vector<AccessDeviation>& known,
                                    const LabOptions& options) {
  ScenarioResult oracle = run_scenario(scenario, nullptr, known);
  std::vector<ScenarioResult> results;
  for (const auto& slot : slots) {
    if (slot.unavailable) continue;
    LabOptions o = options;
    o.backend = slot.kind;
    const auto machine = make_engine_machine(o);
    results.push_back(run_scenario(scenario, machine.get(), known));
  }
  return compare_results(std::move(oracle), std::move(results));
}

std::string format_comparison(const ScenarioComparison& cmp, bool verbose) {
  std::string out =
      fmt::format("== {}{} (oracle vs {})\n", cmp.file, cmp.title.empty() ? "" : ": " + cmp.title,
                  cmp.backends.empty() ? "no backend" : join(cmp.backends, " vs "));
  std::size_t width = 6;  // "oracle"
  for (const auto& b : cmp.backends) width = std::max(width, b.size());
  std::vector<std::string> explained;  // deviations whose rule was printed already
  for (const auto& c : cmp.cases) {
    if (c.classification == CaseClass::KnownDeviation && !verbose) {
      // One line by default: the name, who, where, and the command that shows the rest.
      std::vector<std::string> who;
      for (const auto& b : c.backends) {
        if (!b.deviation.empty()) who.push_back(fmt::format("{} on {}", b.deviation, b.backend));
      }
      out += fmt::format(
          "{} {:<28} {}  known deviation {}; details: pagelab run {}:{} --backend all -v\n",
          mark(c.classification), location_text(c.where), c.access, join(who, ", "), c.where.file,
          c.where.line);
      continue;
    }
    out += fmt::format("{} {:<28} {}\n", mark(c.classification), location_text(c.where), c.access);
    const std::string oracle =
        c.oracle.empty()
            ? "-"
            : c.oracle.front() +
                  (c.oracle.size() > 1
                       ? fmt::format(" (or {})",
                                     join({c.oracle.begin() + 1, c.oracle.end()}, " or "))
                       : "");
    out += fmt::format("       {:<{}}  {}\n", "oracle", width, oracle);
    for (const auto& b : c.backends) {
      out += fmt::format("       {:<{}}  {}\n", b.backend, width, backend_line(b));
      // Its CPU's features (MAXPHYADDR, NX, ...) can make its oracle differ.
      if (b.verdict != Verdict::Skipped && !b.allowed.empty() && b.allowed != c.oracle) {
        out += fmt::format("       {:<{}}  oracle for this CPU: {}\n", "", width,
                           join(b.allowed, " or "));
      }
    }
    if (c.classification != CaseClass::Agree || !c.detail.empty()) {
      out += fmt::format("       -> {}{}\n", to_string(c.classification),
                         c.detail.empty() ? "" : ": " + c.detail);
    }
    for (const auto& b : c.backends) {
      if (!b.deviation.empty() &&
          std::find(explained.begin(), explained.end(), b.deviation) == explained.end()) {
        explained.push_back(b.deviation);
        if (const auto* d = deviation_named(b.deviation)) {
          out += fmt::format("          rule: {}\n          {}: {}\n          reproduce: {}\n",
                             d->rule, b.backend, d->description, d->reproducer);
        }
      }
      const bool show = c.classification == CaseClass::Failed || verbose;
      if (!show) continue;
      for (const auto& ch : b.failed_checks) {
        out +=
            fmt::format("       {} {}:{}: {}{}\n", b.backend, ch.where.file, ch.where.line, ch.text,
                        ch.contradicts_architecture ? "  <- contradicts the architecture" : "");
        out += ch.diff;
      }
      if (b.verdict == Verdict::Failed && !b.engine_report.empty()) {
        out += fmt::format("       {}: the engine's account:\n{}\n", b.backend, b.engine_report);
      }
    }
  }
  out += fmt::format(
      "   {}: {} agree, {} differ (both allowed), {} known deviations, {} failed, {} skipped{}\n",
      to_string(cmp.overall()), cmp.count(CaseClass::Agree), cmp.count(CaseClass::DifferAllowed),
      cmp.count(CaseClass::KnownDeviation), cmp.count(CaseClass::Failed),
      cmp.count(CaseClass::Skipped),
      cmp.partial() == 0 ? "" : fmt::format(" ({} ran on only some backends)", cmp.partial()));
  return out;
}

report::CaseVerdict case_verdict(CaseClass c) {
  switch (c) {
    case CaseClass::Agree:
    case CaseClass::DifferAllowed:
      return report::CaseVerdict::Passed;
    case CaseClass::KnownDeviation:
      return report::CaseVerdict::KnownDeviation;
    case CaseClass::Failed:
      return report::CaseVerdict::Failed;
    case CaseClass::Skipped:
      return report::CaseVerdict::Skipped;
  }
  return report::CaseVerdict::Failed;
}

std::string_view agreement_name(CaseClass c) {
  return c == CaseClass::DifferAllowed ? "differ-allowed" : "agree";
}

namespace {

nlohmann::json outcomes_json(const AccessResult& a) {
  nlohmann::json out = nlohmann::json::array();
  for (std::size_t k = 0; k < a.allowed_fields.size(); ++k) {
    out.push_back(a.allowed_fields[k].to_json(k < a.allowed.size() ? a.allowed[k] : ""));
  }
  return out;
}

}  // namespace

nlohmann::json ScenarioComparison::to_json() const {
  nlohmann::json j;
  j["file"] = file;
  j["title"] = title;
  j["backends"] = backends;
  j["verdict"] = report::to_string(case_verdict(overall()));
  report::VerdictCounts counts;
  nlohmann::json deviations = nlohmann::json::object();
  unsigned agree = 0, differ = 0;
  nlohmann::json list = nlohmann::json::array();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    counts.add(case_verdict(c.classification));
    agree += c.classification == CaseClass::Agree;
    differ += c.classification == CaseClass::DifferAllowed;
    nlohmann::json x;
    x["file"] = c.where.file;
    x["line"] = c.where.line;
    x["access"] = c.access;
    x["verdict"] = report::to_string(case_verdict(c.classification));
    if (c.classification == CaseClass::Agree || c.classification == CaseClass::DifferAllowed) {
      x["agreement"] = agreement_name(c.classification);
    }
    if (!c.detail.empty()) x["reason"] = c.detail;
    x["partial"] = c.partial;
    if (i < oracle.accesses.size()) x["oracle"] = outcomes_json(oracle.accesses[i]);
    x["backends"] = nlohmann::json::object();
    for (std::size_t b = 0; b < c.backends.size(); ++b) {
      const auto& bc = c.backends[b];
      const AccessResult* a =
          b < results.size() && i < results[b].accesses.size() ? &results[b].accesses[i] : nullptr;
      nlohmann::json y;
      y["verdict"] = a != nullptr ? verdict_name(*a) : to_string(bc.verdict);
      if (a != nullptr && a->observed_fields)
        y["observed"] = a->observed_fields->to_json(bc.observed);
      if (a != nullptr) y["allowed"] = outcomes_json(*a);
      y["disagrees"] = bc.disagrees;
      if (!bc.deviation.empty()) {
        y["deviation"] = bc.deviation;
        if (c.classification == CaseClass::KnownDeviation) {
          deviations[bc.deviation] = deviations.value(bc.deviation, 0) + 1;
        }
      }
      if (!bc.reason.empty()) y["reason"] = bc.reason;
      x["backends"][bc.backend] = y;
    }
    list.push_back(x);
  }
  j["counts"] = counts.json();
  j["agreement"] = {{"agree", agree}, {"differ-allowed", differ}, {"partial", partial()}};
  j["known_deviations"] = deviations;
  j["cases"] = list;
  nlohmann::json results_json = nlohmann::json::array();
  results_json.push_back(oracle.to_json());
  for (const auto& r : results) results_json.push_back(r.to_json());
  j["results"] = results_json;
  return j;
}

}  // namespace pagelab::lab::scenario

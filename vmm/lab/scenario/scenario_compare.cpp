#include "pagelab/lab/scenario/scenario_compare.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"
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

nlohmann::json ScenarioComparison::to_json() const {
  nlohmann::json j;
  j["file"] = file;
  j["title"] = title;
  j["backends"] = backends;
  j["classification"] = to_string(overall());
  for (auto c : {CaseClass::Agree, CaseClass::DifferAllowed, CaseClass::KnownDeviation,
                 CaseClass::Failed, CaseClass::Skipped}) {
    j["counts"][std::string(to_string(c))] = count(c);
  }
  j["counts"]["ran on only some backends"] = partial();
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : cases) {
    nlohmann::json x;
    x["line"] = c.where.line;
    x["access"] = c.access;
    x["oracle"] = c.oracle;
    x["classification"] = to_string(c.classification);
    if (!c.detail.empty()) x["detail"] = c.detail;
    x["partial"] = c.partial;
    x["backends"] = nlohmann::json::object();
    for (const auto& b : c.backends) {
      nlohmann::json y;
      y["verdict"] = to_string(b.verdict);
      if (!b.observed.empty()) y["observed"] = b.observed;
      y["allowed"] = b.allowed;
      y["disagrees"] = b.disagrees;
      if (!b.deviation.empty()) y["deviation"] = b.deviation;
      if (!b.reason.empty()) y["reason"] = b.reason;
      x["backends"][b.backend] = y;
    }
    list.push_back(x);
  }
  j["cases"] = list;
  nlohmann::json results_json = nlohmann::json::array();
  results_json.push_back(oracle.to_json());
  for (const auto& r : results) results_json.push_back(r.to_json());
  j["results"] = results_json;
  return j;
}

}  // namespace pagelab::lab::scenario

#pragma once
// Three-way checking: a scenario judged by the oracle alone and run on every backend
// available here (KVM, QEMU TCG), each access classified: the backends agree; they
// differ where the architecture allows both (e.g. a stale and a fresh translation);
// a backend departs from the architecture in a known, named way (access_deviations.hpp);
// or something fails (an unknown departure, an expectation not met, a scenario bug).
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/lab/backend/backend.hpp"
#include "pagelab/lab/judge/access_deviations.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/report/json.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::lab::scenario {

// One backend a comparison may run on.
struct BackendSlot {
  BackendKind kind = BackendKind::Kvm;     // Kvm or Qemu
  std::string name;                        // Backend::name(): "kvm", "qemu-tcg"
  std::string description;                 // "kvm_pvm (modules: ...)", "QEMU TCG, -cpu max"
  std::optional<std::string> unavailable;  // why it cannot run here
};

// KVM then QEMU, each with the reason it cannot run here, if any.
std::vector<BackendSlot> every_backend();
// One slot for `kind` (Auto resolved as make_backend does).
BackendSlot backend_slot(BackendKind kind);

enum class CaseClass {
  Agree,           // every backend that ran did the same, inside the allowed set
  DifferAllowed,   // the backends differ, each inside the allowed set
  KnownDeviation,  // a backend departs from the architecture in a known way
  Failed,          // an unknown departure, an expectation not met, or a scenario bug
  Skipped,         // no backend could run it (each one's reason in the detail)
};
// "agree", "differ, both allowed", "known deviation", "FAILED", "skipped".
std::string_view to_string(CaseClass c);
// In the JSON (docs/json.md): agree and differ are both "passed" (with an "agreement"
// field saying which), the rest map one to one.
report::CaseVerdict case_verdict(CaseClass c);
std::string_view agreement_name(CaseClass c);  // "agree" or "differ-allowed"

// One access on one backend.
struct BackendCase {
  std::string backend;
  Verdict verdict = Verdict::Skipped;
  std::string observed;              // empty when it did not run
  std::vector<std::string> allowed;  // this backend's oracle (its CPU features)
  bool disagrees = false;            // outside the allowed set
  std::string deviation;             // the known deviation that explains it
  std::string reason;                // why it failed or was skipped
  std::vector<CheckResult> failed_checks;
  std::string engine_report;
};

// One access line of a scenario, across backends.
struct CaseComparison {
  Location where;
  std::string access;
  std::vector<std::string> oracle;  // allowed outcomes with every paging feature
  std::vector<BackendCase> backends;
  CaseClass classification = CaseClass::Skipped;
  bool partial = false;  // agree / differ among some backends, skipped on the others
  std::string detail;    // one line: who differs, which deviation, why it failed
};

struct ScenarioComparison {
  std::string file, title;
  std::vector<std::string> backends;    // the names that were tried, in order
  ScenarioResult oracle;                // the model alone
  std::vector<ScenarioResult> results;  // one per backend tried, same order
  std::vector<CaseComparison> cases;
  [[nodiscard]] unsigned count(CaseClass c) const;
  [[nodiscard]] unsigned partial() const;  // cases that ran on only some backends
  // Failed if any case failed, else KnownDeviation, DifferAllowed, Agree; Skipped when
  // every case was.
  [[nodiscard]] CaseClass overall() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// Classifies results already run: `oracle` with no machine, `results` one per backend
// (same scenario, so the same accesses in the same order).
ScenarioComparison compare_results(ScenarioResult oracle, std::vector<ScenarioResult> results);

// Runs `scenario` with the oracle alone and on every available slot (a fresh machine
// each, from `options` with the slot's kind), then compare_results(). Slots that are
// unavailable are not tried. Throws ScenarioError for a malformed scenario.
ScenarioComparison compare_scenario(
    const Scenario& scenario, const std::vector<BackendSlot>& slots,
    const std::vector<AccessDeviation>& known = known_access_deviations(),
    const LabOptions& options = {});

// The readable report of one scenario: per access the oracle and each backend, and
// the classification; `verbose` also shows the diffs of cases that did not fail.
std::string format_comparison(const ScenarioComparison& comparison, bool verbose);

}  // namespace pagelab::lab::scenario

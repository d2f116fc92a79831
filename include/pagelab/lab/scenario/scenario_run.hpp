#pragma once
// Running a scenario: every access is judged by the architectural model (the allowed
// outcomes) and, with a CPU behind it, performed on the CPU; every `expect` line is
// checked against both. An expectation no allowed outcome satisfies is a scenario bug
// (it contradicts the architecture); one the CPU does not meet is a failure with a diff.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/lab/judge/access_deviations.hpp"
#include "pagelab/lab/judge/scenario_model.hpp"
#include "pagelab/lab/scenario/scenario.hpp"

namespace pagelab::lab::scenario {

enum class Verdict { Passed, Failed, Skipped };
std::string_view to_string(Verdict verdict);

// What the CPU did for one access.
struct Observation {
  // Ok (translation; physical unknown), #PF or #GP, as the probe reported it.
  enum class Kind { Ok, PageFault, GeneralProtection, OtherFault } kind = Kind::Ok;
  std::uint64_t value = 0;  // reads that succeeded
  std::uint32_t vector = 0, error_code = 0;
  std::uint64_t cr2 = 0;
  // The backend's own check of observed ∈ allowed; false with `report` on a mismatch.
  bool agrees = true;
  std::string report;                    // the backend's readable account when !agrees
  std::optional<std::string> deviation;  // a named platform deviation explains it
  // A/D bits read back from the entries after the access, by entry address (only for
  // an access with an `expect ad` line: the batch ends there).
  std::vector<std::pair<std::uint64_t, std::uint64_t>> entries_after;
  // The backend's judge (the one judge, fed the backend's observations): what the
  // architecture allowed and what the access did to each entry. Absent: the scenario's
  // model judges.
  std::optional<judge::Judgement> judgement;
  std::vector<judge::EntryEffect> entries;
};
std::string describe(const Observation& observation);

// A CPU behind the model. The oracle-only run has none.
class Machine {
 public:
  virtual ~Machine() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  // The features the model should assume (the CPU's).
  [[nodiscard]] virtual paging::CpuFeatures features() const = 0;
  // Before anything is built: a reason to skip the whole scenario (a mode or a CPU
  // feature the platform lacks), judged then by the oracle alone with every feature.
  virtual std::optional<std::string> precheck(const Scenario& scenario) = 0;
  // Called once the scenario's setup (everything before its first access) is applied
  // to `model`: build the same on the CPU and enter the mode. Returns a reason to skip
  // the scenario when the platform cannot run it. May replace `model` (e.g. with one
  // whose tables sit where the CPU's are).
  virtual std::optional<std::string> start(const Scenario& scenario, ScenarioModel& model) = 0;
  // Mirrors a later non-access statement, which made `after.last_changes()` to memory.
  // Returns a reason to skip the rest of the scenario.
  virtual std::optional<std::string> apply(const Statement& statement,
                                           const ScenarioModel& after) = 0;
  // True when flush() brings the judge's verdict (Observation::judgement): the runner
  // then batches accesses. Otherwise the scenario's model judges, one access at a time.
  [[nodiscard]] virtual bool judges() const { return false; }
  // Queues the access; it runs at the next flush(), with everything queued since the
  // last, in one batch.
  virtual void queue(const AccessStep& step, const ScenarioModel& model) = 0;
  // Runs what was queued: one result per queued access, in order; a string is a reason
  // to skip that access. `read_back` asks for the entries of the last access as the
  // CPU left them (Observation::entries_after).
  virtual std::vector<std::variant<Observation, std::string>> flush(const ScenarioModel& model,
                                                                    bool read_back) = 0;
  // Why the machine can run nothing more (the guest stopped: a triple fault, a hang;
  // QEMU exited), once that happened. The access it happened on fails with it and the
  // rest of the scenario is skipped at once, instead of one watchdog per access.
  [[nodiscard]] virtual std::optional<std::string> stopped() const { return std::nullopt; }
};

// One outcome as fields (what the JSON shows; `observed` and `allowed` hold the text).
struct OutcomeFields {
  enum class Kind { Ok, PageFault, GeneralProtection, Exception } kind = Kind::Ok;
  std::uint32_t vector = 0;
  std::uint32_t error_code = 0;
  std::optional<std::uint64_t> cr2, value, physical;
  std::optional<paging::PageSize> page_size;
  bool stale = false;  // allowed only: a translation the CPU may still cache
  [[nodiscard]] nlohmann::json to_json(const std::string& text) const;
};
OutcomeFields outcome_fields(const Observation& observation, bool is_read);
OutcomeFields outcome_fields(const AllowedOutcome& allowed, bool is_read);

struct CheckResult {
  Location where;
  std::string text;  // the expect line
  bool passed = true;
  bool contradicts_architecture = false;  // no allowed outcome meets it
  std::string diff;                       // expected / observed / oracle, when failed
};

struct AccessResult {
  Location where;
  std::string text;  // the access line
  Verdict verdict = Verdict::Passed;
  std::string observed;                          // describe(Observation), empty without a CPU
  std::vector<std::string> allowed;              // the oracle's allowed outcomes, readable
  std::optional<OutcomeFields> observed_fields;  // the same as fields
  std::vector<OutcomeFields> allowed_fields;
  std::vector<paging::WalkStep> walk;
  std::string fault_reason;  // the oracle's explanation of a fault
  std::vector<CheckResult> checks;
  std::string reason;  // why it failed or was skipped, one line
  std::string backend_report;
  // The CPU's outcome is outside what the architecture allows.
  bool disagrees = false;
  // ... explained by this known deviation (then the verdict is Skipped, with the reason).
  std::string deviation;
};

struct ScenarioResult {
  std::string file, title, backend;
  Verdict verdict = Verdict::Passed;
  std::string reason;                 // why the whole scenario was skipped
  std::vector<std::string> warnings;  // the parser's (Scenario::warnings)
  std::vector<AccessResult> accesses;
  // Accesses handed to an AccessSink instead of kept in `accesses`: their verdicts.
  std::array<unsigned, 3> streamed{};  // by Verdict
  unsigned streamed_deviations = 0;
  // Over `accesses` and the streamed ones.
  [[nodiscard]] unsigned count(Verdict v) const;
  [[nodiscard]] unsigned known_deviations() const;
  // "passed", "failed", "skipped" or "known-deviation" (docs/json.md): an access the
  // platform departs on in a known way is not a skip.
  [[nodiscard]] std::string_view verdict_name() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// The verdict of one access in the shared JSON words (known deviations named as such).
std::string_view verdict_name(const AccessResult& access);
// The walk of an access, level by level, entries and addresses as hex strings.
nlohmann::json walk_json(const std::vector<paging::WalkStep>& walk);

// Takes each access's result as soon as it is judged, in file order. A run with a sink
// keeps none of them (ScenarioResult::accesses stays empty, the counts are kept), so its
// memory stays flat however many accesses a file holds.
class AccessSink {
 public:
  virtual ~AccessSink() = default;
  // `so_far`: the scenario's result as far as it is known (file, backend, reason).
  virtual void on_access(const ScenarioResult& so_far, const AccessResult& access) = 0;
};

// Runs `scenario`; `machine` = nullptr judges it with the model alone ("oracle").
// A disagreement the backend names is a known deviation only when `known` lists that
// name; otherwise it fails like any other (pass an empty list to see them all fail).
// Throws ScenarioError for statements the architecture refuses to build.
ScenarioResult run_scenario(const Scenario& scenario, Machine* machine,
                            const std::vector<AccessDeviation>& known = known_access_deviations(),
                            AccessSink* sink = nullptr);

// The same for a file read again one statement at a time, in memory that does not grow
// with its length: `head` is scan_scenario()'s for that file.
ScenarioResult run_scenario_file(const Scenario& head, Machine* machine,
                                 const std::vector<AccessDeviation>& known, AccessSink* sink);
// One pass over a file that checks every statement (throws ScenarioError like
// load_scenario) and keeps its header and its statements up to the first access.
Scenario scan_scenario(const std::string& path);

// The readable report: one line per access, diffs under failures, and the verdict.
std::string format_report(const ScenarioResult& result, bool verbose);
// The same in parts, for a report printed while the scenario runs (AccessSink): the
// title line, one access, and the verdict (with the scenario's reason, which a streamed
// report can only give at the end).
std::string format_report_title(const ScenarioResult& result);
std::string format_access(const ScenarioResult& result, const AccessResult& access, bool verbose);
std::string format_report_end(const ScenarioResult& result);

}  // namespace pagelab::lab::scenario

#pragma once
// One cell of the mode-transition matrix: a control write tried from a state, what the
// transition model says it must do (with the SDM rule), what a backend did, and how
// the two compare. Classification is pure logic, so it is tested without a CPU.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/paging/transition.hpp"

namespace pagelab::lab {

struct Deviation;

enum class CaseVerdict { Agreed, Deviation, Mismatch, Skipped };
std::string_view to_string(CaseVerdict verdict);  // "agreed", "deviation", "mismatch", "skipped"
// The JSON's words (docs/json.md): "passed", "known-deviation", "failed", "skipped".
std::string_view json_verdict(CaseVerdict verdict);

// What the backend did with the write. `executed == false` means it was not tried.
struct Observation {
  bool executed = false;
  bool faulted = false;
  std::uint32_t vector = 0;
  std::uint64_t error_code = 0;
  paging::ControlState after;  // registers the probe reported afterwards, CS.L/D from the vCPU
  // The guest stopped abnormally (GuestStopped): its kind and diagnostics.
  std::string stopped;
  // CS/SS cross-check after the write: empty when it agreed or was not made.
  std::string segment_problem;
};

struct MatrixCase {
  std::string backend = "kvm";  // Backend::name(): "kvm", "qemu-tcg"
  // What ran it, as deviations name platforms: the KVM flavour ("kvm_pvm",
  // "kvm_intel", ...) or the backend name ("qemu-tcg"). Empty: unknown, and no
  // platform-specific deviation matches.
  std::string platform;
  std::string route;  // empty for single steps from a from-state
  paging::ControlState before;
  paging::Mode from = paging::Mode::Real;
  paging::Step step;
  paging::Verdict expected;
  Observation observed;
  // Set before classification when the case must not run: the reason.
  std::optional<std::string> skip_reason;

  CaseVerdict verdict = CaseVerdict::Skipped;
  std::string deviation_id;  // for Deviation
  std::string detail;        // why it is a mismatch, deviation or skip

  [[nodiscard]] std::string expected_text() const;  // "allowed -> 64-bit (4-level)", "#GP(0)"
  [[nodiscard]] std::string observed_text() const;
  // "pae:CR0.PG 1->0" (from-mode:transition) or "route:NAME": `pagelab modes --case ID`.
  [[nodiscard]] std::string id() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// Where the observation departs from the verdict (empty when they agree): fault vs no
// fault, vector and error code, registers and mode after (SDM: a refused write leaves
// the state unchanged).
std::vector<std::string> differences(const MatrixCase& c);

// Fills verdict/deviation_id/detail: Skipped when skip_reason is set or nothing ran;
// Agreed when there is no difference; Deviation when a listed deviation matches;
// Mismatch otherwise.
void classify(MatrixCase& c, const std::vector<Deviation>& deviations);

// Short names used on the command line and in JSON: real, protected, paging32, pae,
// compat4, long64, compat5, long64-5.
std::string_view short_name(paging::Mode mode);
std::optional<paging::Mode> mode_from_short_name(std::string_view name);

}  // namespace pagelab::lab

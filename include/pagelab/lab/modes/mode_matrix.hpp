#pragma once
// The mode-transition regression suite: every single control write from every
// reachable mode, and the named routes between modes, run in the probe and compared
// with the transition model (paging/transition.hpp).
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/modes/deviations.hpp"
#include "pagelab/lab/modes/mode_matrix_case.hpp"

namespace pagelab::lab {

struct MatrixOptions {
  LabOptions lab;
  std::optional<paging::Mode> only_from;  // only steps from this from-state
  std::string step_filter;                // only steps whose label contains this
  // The CPU time QEMU TCG may spend on the command of a case before it counts as a
  // hang (lab.watchdog, wall clock, still covers everything). A command takes
  // microseconds there, and QEMU 7.2 loops forever on some refused writes
  // (qemu-reserved-control-bit-vmexit-loop): waiting seconds for each would dominate
  // the run. CPU time rather than wall time, so that a QEMU starved by a loaded
  // machine is not mistaken for one that spins. KVM ignores it.
  std::chrono::milliseconds case_busy_watchdog{200};
  bool run_matrix = true;
  bool run_routes = true;
  std::vector<Deviation> deviations = known_deviations();
  // Called on each case after it ran and before it is classified: tests use it to
  // inject observations.
  std::function<void(MatrixCase&)> before_classify;
  // Progress: called once per finished case.
  std::function<void(const MatrixCase&)> on_case;
};

struct RouteResult {
  std::string name;         // "a", "b", "c", "d", "down", "5-level"
  std::string description;  // "PG, then PAE: 32-bit paging, then PAE paging"
  std::vector<MatrixCase> steps;
  // Worst of the steps: mismatch > deviation > skipped (did not finish) > agreed.
  [[nodiscard]] CaseVerdict overall() const;
};

struct Counts {
  int total = 0, agreed = 0, deviations = 0, mismatches = 0, skipped = 0;
  std::map<std::string, int> by_deviation;
  std::map<std::string, int> skipped_by_reason;
};

struct MatrixResult {
  std::string backend = "kvm";  // Backend::name()
  std::string platform;         // as MatrixCase::platform
  // Labs started (the first, and whenever a reset failed), Labs reset to power-on
  // (after a guest stop or a failed rewind), and cases whose Lab was reused by
  // rewinding it with probe commands.
  int labs_started = 0, resets = 0, rewinds = 0;
  // The features the model judged with (from the CPUID the guest executes).
  paging::TransitionFeatures features;
  // Where the guest's CPUID differs from the table the VMM gave KVM_SET_CPUID2.
  std::vector<std::string> notes;
  std::vector<MatrixCase> cases;
  std::vector<RouteResult> routes;
  std::chrono::milliseconds elapsed{0};
  [[nodiscard]] Counts counts() const;  // over cases and route steps
  [[nodiscard]] bool passed() const { return counts().mismatches == 0; }
  [[nodiscard]] nlohmann::json to_json() const;
};

// The model's features for a CPUID table.
paging::TransitionFeatures transition_features(const PlatformCpu& cpu);

// The CPUID leaves the model needs (0, 1, 7.0, 0x80000000, 0x80000001, 0x80000008) as
// the guest itself sees them, executed by the probe: the SDM's reserved-bit rules
// follow what CPUID returns to the software, which a platform may not take from the
// table the VMM set. Runs probe commands, so the Lab must be idle in any mode.
PlatformCpu guest_cpuid(Lab& lab);

// Runs everything `options` asks for. Every case starts from its from-state exactly as
// first reached: the Lab is rewound with probe commands (cheap) and replaced only when
// that fails or the guest stopped. Throws only when no Lab can be created at all.
MatrixResult run_mode_matrix(const MatrixOptions& options);

// The from-states the matrix covers, in order.
std::vector<paging::Mode> matrix_from_states();

}  // namespace pagelab::lab

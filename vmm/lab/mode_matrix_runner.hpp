#pragma once
// Shared by the matrix and the routes: drives one Lab, turns model steps into probe
// commands, observes the result and cross-checks CS/SS with the GDT.
#include <memory>
#include <optional>
#include <string>

#include "pagelab/lab/mode_matrix.hpp"

namespace pagelab::lab::detail {

// The from-state could not be reached on this platform.
struct Unreachable {
  std::string reason;
};

class Runner {
 public:
  explicit Runner(const MatrixOptions& options);

  // A fresh Lab in real mode.
  void fresh();
  Lab& lab() { return *lab_; }
  const paging::TransitionFeatures& features() const { return features_; }
  const PlatformCpu& cpu() const { return cpu_; }
  const std::vector<std::string>& notes() const { return notes_; }

  // The control state the probe last reported, CS.L/D from the vCPU.
  paging::ControlState state();

  // Evaluates `step` against the model from the current state, runs it unless
  // `skip` (or the safety check) says not to, observes and classifies. After a
  // GuestStopped the Lab is rebuilt (in real mode).
  MatrixCase attempt(const paging::Step& step, const std::string& route = {},
                     std::optional<std::string> skip = std::nullopt);

  // Drives the current Lab (fresh, real mode) into `mode`; throws Unreachable.
  void reach(paging::Mode mode);

  // Runs one probe command as setup; throws Unreachable naming `what` when it faults.
  void setup(std::string_view what, std::uint32_t cmd, std::uint64_t arg0 = 0,
             std::uint64_t arg1 = 0);

  // Classification and the progress callback for a case that ran outside attempt().
  void finish(MatrixCase& c);

  // Observes the Lab after a command ran (registers, fault, segment cross-check).
  Observation observe(const ProbeReport& report);

 private:
  const MatrixOptions& options_;
  PlatformCpu cpu_;
  paging::TransitionFeatures features_;
  std::vector<std::string> notes_;
  std::unique_ptr<Lab> lab_;
};

// Why a step must not run from `before` (nullopt: safe), given the model's verdict.
std::optional<std::string> unsafe_reason(const paging::ControlState& before,
                                         const paging::Step& step, const paging::Verdict& verdict);

std::vector<RouteResult> run_routes(Runner& runner);

}  // namespace pagelab::lab::detail

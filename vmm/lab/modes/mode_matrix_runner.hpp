#pragma once
// Shared by the matrix and the routes: drives one Lab, turns model steps into probe
// commands, observes the result and cross-checks CS/SS with the GDT.
#include <memory>
#include <optional>
#include <string>

#include "pagelab/lab/modes/mode_matrix.hpp"

namespace pagelab::lab::detail {

// The from-state could not be reached on this platform.
struct Unreachable {
  std::string reason;
};

class Runner {
 public:
  explicit Runner(const MatrixOptions& options);

  // A fresh Lab in real mode: the current one reset (Lab::reset), or a new one.
  void fresh();
  Lab& lab() { return *lab_; }
  const paging::TransitionFeatures& features() const { return features_; }
  const PlatformCpu& cpu() const { return cpu_; }
  const std::vector<std::string>& notes() const { return notes_; }
  const std::string& backend() const { return backend_; }
  const std::string& platform() const { return platform_; }
  // How many Labs were started, how many times one was reset to power-on, and how
  // many times one was reused as it was (rewind()).
  int labs_started() const { return labs_started_; }
  int resets() const { return resets_; }
  int rewinds() const { return rewinds_; }

  // The control state the probe last reported, CS.L/D from the vCPU.
  paging::ControlState state();

  // Takes the current Lab back, with probe commands, to the protected-mode state the
  // probe has right after ENTER_PROT (CR0/CR3/CR4/EFER as then). Much cheaper than a
  // new Lab where starting one is slow (QEMU: ~27 ms). False when a command faulted,
  // the guest stopped or the registers are not that state: then start afresh.
  bool rewind();

  // Into `mode`: by rewind() and reach() where that lands exactly in `expect` (when
  // given), else in a fresh Lab. Throws Unreachable.
  void go(paging::Mode mode, const std::optional<paging::ControlState>& expect = std::nullopt);

  // Evaluates `step` against the model from the current state, runs it unless
  // `skip` (or the safety check) says not to, observes and classifies. After a
  // GuestStopped the Lab is rebuilt (in real mode).
  MatrixCase attempt(const paging::Step& step, const std::string& route = {},
                     std::optional<std::string> skip = std::nullopt);

  // Drives the current Lab, in real mode or in the state right after ENTER_PROT, into
  // `mode`; throws Unreachable.
  void reach(paging::Mode mode);

  // Throws Unreachable when the CPU lacks a feature `mode` needs (LA57).
  void require_features(paging::Mode mode) const;

  // Runs one probe command as setup; throws Unreachable naming `what` when it faults.
  void setup(std::string_view what, std::uint32_t cmd, std::uint64_t arg0 = 0,
             std::uint64_t arg1 = 0);

  // Classification and the progress callback for a case that ran outside attempt().
  void finish(MatrixCase& c);

  // Observes the Lab after a command ran (registers, fault, segment cross-check).
  Observation observe(const ProbeReport& report);

 private:
  const MatrixOptions& options_;
  std::string backend_, platform_;
  int labs_started_ = 0, resets_ = 0, rewinds_ = 0;
  // A case left the Lab in a state rewind() must not trust (see finish()).
  bool dirty_ = false;
  // The registers right after ENTER_PROT in a fresh Lab: what rewind() restores.
  std::optional<paging::ControlState> base_;
  // state() for the last probe command of this Lab (generation_ counts Labs).
  struct CachedState {
    int generation;
    std::uint64_t exits;
    paging::ControlState state;
  };
  int generation_ = 0;
  std::optional<CachedState> cached_;
  PlatformCpu cpu_;
  paging::TransitionFeatures features_;
  std::vector<std::string> notes_;
  std::unique_ptr<Lab> lab_;
};

// The control state in a probe report, CS.L/D from the vCPU's descriptor cache.
paging::ControlState state_from(const ProbeReport& report, const kvm_sregs& sregs);

// `step` with, for a far jump, the selector of the probe's code segment with that L and
// D (probe_abi.h): the one the probe jumps to, whose #GP(selector) the model predicts.
paging::Step with_probe_selector(paging::Step step);

// Why a step must not run from `before` (nullopt: safe), given the model's verdict.
std::optional<std::string> unsafe_reason(const paging::ControlState& before,
                                         const paging::Step& step, const paging::Verdict& verdict);

std::vector<RouteResult> run_routes(Runner& runner);

}  // namespace pagelab::lab::detail

#pragma once
// Runs fuzz cases of one paging mode on one machine: a Lab's experiment engine in that
// mode, many cases per batch (one VM exit for thousands of operations), each case
// starting from its own reset (controls, the window's entries, a full TLB flush), every
// access judged by the one judge (Engine::run).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/lab.hpp"

namespace pagelab::fuzz {

// Cases per ModeRunner::run in a campaign unless --batch says otherwise, and in `pagelab
// bench`: a batch's size changes what a case costs (the control writes its sorting
// saves, the memory its results take).
inline constexpr std::size_t DefaultBatchCases = 256;

// What one access did (for comparing backends and lowerings).
struct AccessRecord {
  std::size_t step = 0;
  bool ran = false;  // false: skipped (the reason is the engine's)
  lab::OpResult observed;
  bool agrees = true;
  std::string deviation;
};

// An access (or operation) the architecture does not allow, unexplained by any known
// deviation.
struct Disagreement {
  std::string kind;      // "oracle": outcome not allowed; "ad": A/D bits; "control"; "stopped"
  unsigned level = 0;    // the level where the fresh walk ended (0: none)
  std::string rule;      // what differs, without addresses: "read-U: pf:0x5 vs ok"
  std::size_t step = 0;  // the step it happened at
  std::string report;    // the engine's account (walks level by level)
  std::string observed;  // "#PF(0x5) cr2=..." / "ok"
  std::vector<paging::Outcome> allowed;
  [[nodiscard]] std::string signature(paging::PagingMode mode) const;
};

struct CaseOutcome {
  enum class Verdict { Passed, Failed, KnownDeviation, Skipped } verdict = Verdict::Passed;
  std::vector<std::string> deviations;  // names met (KnownDeviation)
  std::optional<Disagreement> disagreement;
  std::string skip_reason;
  std::vector<AccessRecord> accesses;
  std::size_t accesses_run = 0;
};
std::string_view to_string(CaseOutcome::Verdict verdict);

// Outcome classes as the signature spells them: "ok", "pf:0x5", "gp".
std::string outcome_class(const lab::OpResult& observed);
std::string outcome_class(const paging::Outcome& allowed);

class ModeRunner {
 public:
  // Enters `mode` on `lab` (throws std::runtime_error with the platform's reason when it
  // cannot: e.g. no LA57).
  ModeRunner(lab::Lab& lab, paging::PagingMode mode);
  ~ModeRunner();
  ModeRunner(const ModeRunner&) = delete;
  ModeRunner& operator=(const ModeRunner&) = delete;

  // Runs the cases (all of this mode) in as few batches as the engine allows. Throws
  // what the engine throws when the guest stops (lab::GuestStopped, ...): the runner is
  // then unusable.
  // `isolated`: data words earlier cases wrote are zeroed first (host writes, between
  // batches), so that the cases see guest RAM as a fresh machine has it, as `pagelab run`
  // replays them: for confirming and shrinking a finding.
  std::vector<CaseOutcome> run(std::span<const FuzzCase> cases, bool isolated = false);
  // Known deviations count as disagreements too (kind "deviation:NAME"): --strict.
  // Their reports are then worth the words.
  void set_strict(bool strict);
  [[nodiscard]] paging::PagingMode mode() const { return mode_; }
  [[nodiscard]] std::uint64_t exits() const { return engine_->vm_exits(); }
  [[nodiscard]] const OpBase& base() const { return base_; }
  [[nodiscard]] std::vector<std::string> platform_notes() const {
    return engine_->platform_notes();
  }

 private:
  // Controls and the window's entries as the case wants them.
  void lower_reset(const FuzzCase& c, std::vector<lab::Op>& ops);
  // Nothing cached from an earlier case (global translations too); loads the PDPTEs.
  void lower_flush(const FuzzCase& c, std::vector<lab::Op>& ops) const;
  lab::Lab& lab_;
  paging::PagingMode mode_;
  std::unique_ptr<lab::Engine> engine_;
  OpBase base_;
  std::optional<ControlValues> controls_;  // as the last case left them
  std::vector<std::uint64_t> dirty_;       // window words a case may have left non-zero (repeats)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> want_;  // lower_reset's scratch
  bool strict_ = false;
  std::set<std::uint64_t> data_dirty_;  // 8-byte data words accesses may have written
};

}  // namespace pagelab::fuzz

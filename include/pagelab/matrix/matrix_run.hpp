#pragma once
// Running the permission matrix of one mode on a Lab: each selected case becomes engine
// operations (control writes only where the control state changes, the entries that
// differ from the previous case, INVLPG or — for a PAE PDPTE — MOV CR3, the access, and
// a read-back of the entries whose A/D bits the access may set), thousands per VM exit;
// the engine's one judge decides every access.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pagelab/campaign/shard.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/matrix/flag_space.hpp"

namespace pagelab::matrix {

// Which cases of a mode run: every `sample`-th legal case (its number n with
// n % sample == 0), of those the ones shard and worker own (by n / sample), at most
// `limit` (0: all). `only`: just that case, whatever the rest says.
struct Selection {
  std::uint64_t sample = 1;
  campaign::Shard shard;
  unsigned worker = 0, workers = 1;  // -j: worker w of W within the shard
  std::uint64_t limit = 0;
  std::optional<Setup> only;
  [[nodiscard]] bool selects(std::uint64_t number) const;
};

enum class Verdict { Passed, Failed, Skipped, KnownDeviation };
std::string_view to_string(Verdict v);  // "passed", "failed", "skipped", "known-deviation"

// A case that did not pass: its name, what the engine and the judge said.
struct CaseReport {
  std::uint64_t number = 0;
  std::string name;
  Setup setup;
  Verdict verdict = Verdict::Failed;
  std::string deviation;  // KnownDeviation: its id
  std::string report;     // the access, both walks, the observation, A/D read-back
  std::string observed;   // one line: what the CPU did
};

struct ModeResult {
  std::string mode;
  std::optional<std::string> skipped;  // the whole mode, with the detected reason
  // Legal cases: known once a worker's enumeration went through the whole space (0 when
  // it stopped early: --limit, a signal, or the mode was skipped).
  std::uint64_t cases_in_mode = 0;
  std::uint64_t ran = 0, agreed = 0, unexplained = 0, skipped_cases = 0;
  std::map<std::string, std::uint64_t> deviations;    // id -> cases
  std::map<std::string, std::uint64_t> skip_reasons;  // reason -> cases
  std::vector<CaseReport> reports;                    // failures (and strict deviations), in order
  std::uint64_t failures_not_kept = 0;
  std::uint64_t exits = 0, ops = 0, control_writes = 0, entry_writes = 0;
  double seconds = 0;
  // CPU time of the run, summed over workers: pagelab's own (the workers' threads, which
  // on KVM include the guest's) and the backend's outside them (QEMU's process).
  double cpu_seconds = 0;
  bool stopped = false;                 // SIGINT
  void merge(const ModeResult& other);  // same mode, another worker's share
};

struct RunOptions {
  Selection selection;
  bool strict = false;      // known deviations fail
  bool ad_readback = true;  // read every entry whose A/D the access may set, per case
  std::size_t keep_reports = 50;
  // Called after each batch with the cases done so far; return false to stop.
  std::function<bool(std::uint64_t)> on_batch;
};

// Runs the selected cases of `mode` on `lab`. A mode the platform cannot enter is
// returned with `skipped` set (the reason detected from CPUID or from the engine).
ModeResult run_mode(lab::Lab& lab, const MatrixMode& mode, const RunOptions& options);

// The case as a `.pgl` scenario that `pagelab run` replays (and that fails the same
// way when the CPU and the judge disagree on it). `maxphyaddr` places rmax.
std::string export_case(const FlagSpace& space, const Setup& s, std::uint64_t number,
                        unsigned maxphyaddr, const std::string& observed = {});

}  // namespace pagelab::matrix

#pragma once
// Shrinking a disagreement: the case is re-run reduced (steps dropped, entries dropped,
// flag bits cleared, control bits back to the start state, accesses made plainer) on the
// same machine, keeping every reduction after which it still disagrees with the same
// signature, until nothing more can go. The result is written as a `.pgl` reproducer.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/fuzz/runner.hpp"

namespace pagelab::fuzz {

using RunOne = std::function<CaseOutcome(const FuzzCase&)>;

struct ShrinkResult {
  FuzzCase minimal;
  CaseOutcome outcome;  // of the minimal case
  unsigned runs = 0;    // candidates run
};

// `outcome` is the case's own (failed, with a disagreement). At most `max_runs` runs.
ShrinkResult shrink(const FuzzCase& c, const CaseOutcome& outcome, const RunOne& run,
                    unsigned max_runs = 600);

// `expect` lines for what the architecture allows at the disagreement (none when the
// allowed outcomes differ in kind or error code).
std::vector<std::string> expect_lines(const Disagreement& d);

struct ReproducerInfo {
  std::string signature, backend, profile, shard;
  bool amd = false;  // the backend's CPU says AMD (CpuFeatures::amd)
};
// The reproducer: a comment header (signature, seed, case number, backend, what the
// backend did instead) and the case with its expect lines.
std::string reproducer_text(const FuzzCase& c, const CaseOutcome& outcome,
                            const ReproducerInfo& info);

}  // namespace pagelab::fuzz

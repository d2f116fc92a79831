#pragma once
// Known ways a platform departs from the architecture on single accesses, as data
// (the mode-transition ones are in deviations.hpp): the rule broken, how to recognise
// a case, and how to reproduce it. The engine names a disagreement with the first
// entry that matches; one that matches none stays a failure.
#include <functional>
#include <string>
#include <vector>

#include "pagelab/lab/engine/experiment.hpp"

namespace pagelab::lab {

// The platform keys of the machine that runs the probe (platform_keys() in
// host_machine.hpp): "tcg"; or "kvm", the flavour ("pvm", "kvm_amd", "kvm_intel"),
// "kvm-shadow-mmu", "tcg-under-kvm".
std::vector<std::string> platform_keys(const Lab& lab);

// One access the engine could not match to any allowed outcome.
// Made for every access a deviation is tried on: it refers to what it describes (the
// callers keep all of it alive) and is never kept.
struct AccessCase {
  const std::vector<std::string>& platform;  // platform_keys()
  const OpAccess& access;
  const OpResult& observed;
  const std::vector<paging::Outcome>& allowed;  // fresh first, then stale
  // The outcome of a walk over the tables as they were before the host's foreign
  // writes (OpForeignWrite) matches what was observed.
  bool matches_before_foreign_writes = false;
  paging::CpuState state;  // the control state the access ran under
  // Does a walk of the tables in memory under another control state give what was
  // observed? (A platform acting on a stale control bit.)
  std::function<bool(const paging::CpuState&)> matches_under;
  // Does a TLB entry that a #PF since should have invalidated give what was observed?
  // (Judge::matches_dropped_by_fault.)
  std::function<bool()> matches_dropped_by_fault;
};

struct AccessDeviation {
  std::string id;  // e.g. "shadow-mmu-host-pte-write-invisible"
  // The platform key it belongs to ("kvm-shadow-mmu", "tcg", "tcg-under-kvm", ...): it
  // never explains a case from a platform without that key.
  std::string platform;
  std::string rule;         // the rule the platform breaks (SDM section)
  std::string description;  // what the platform does instead, where it was seen
  std::string reproducer;   // a pagelab command line that shows it
  std::function<bool(const AccessCase&)> matches;
  // The platform keeps TLB entries a #PF invalidates: it may answer from one even where
  // the outcome is also the architecture's, so the judge keeps them as alternatives
  // for what such an access did to A/D bits and data (Judge::widen_with_dropped).
  bool keeps_tlb_entries_across_faults = false;
};

// Does a known deviation of this platform keep TLB entries across a #PF?
bool keeps_tlb_entries_across_faults(const std::vector<std::string>& platform);

const std::vector<AccessDeviation>& known_access_deviations();

// Is `d` one of this platform's (platform_keys())?
bool applies_to(const std::vector<std::string>& platform, const AccessDeviation& d);

// The first entry of `list` that matches, or nullptr.
const AccessDeviation* find_access_deviation(const AccessCase& c,
                                             const std::vector<AccessDeviation>& list);

}  // namespace pagelab::lab

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

// Which platform ran the probe, as deviation data names it: "pvm", "kvm_intel",
// "kvm_amd", "kvm" (another KVM) or "tcg" (QEMU's software CPU).
std::string platform_tag(const Lab& lab);

// One access the engine could not match to any allowed outcome.
struct AccessCase {
  std::string platform;  // platform_tag()
  const OpAccess& access;
  const OpResult& observed;
  const std::vector<paging::Outcome>& allowed;  // fresh first, then stale
  // The outcome of a walk over the tables as they were before the host's foreign
  // writes (OpForeignWrite) matches what was observed.
  bool matches_before_foreign_writes = false;
};

struct AccessDeviation {
  std::string id;           // e.g. "pvm-host-pte-write-invisible"
  std::string rule;         // the rule the platform breaks (SDM section)
  std::string description;  // what the platform does instead, where it was seen
  std::string reproducer;   // a pagelab command line that shows it
  std::function<bool(const AccessCase&)> matches;
};

const std::vector<AccessDeviation>& known_access_deviations();

// The first entry of `list` that matches, or nullptr.
const AccessDeviation* find_access_deviation(const AccessCase& c,
                                             const std::vector<AccessDeviation>& list);

}  // namespace pagelab::lab

#pragma once
// Known ways a platform departs from the architecture in mode transitions, as data:
// what rule is broken, how to recognise a case of it, and how to reproduce it. A
// difference that matches none of these is an unexplained mismatch and fails the run.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pagelab/lab/modes/mode_matrix_case.hpp"

namespace pagelab::lab {

struct Deviation {
  std::string id;  // e.g. "pvm-legacy-paging-refused"
  // Where it was seen: a platform name as in MatrixCase::platform ("kvm_pvm",
  // "qemu-tcg"), or a family ("kvm": every KVM flavour). A deviation never explains a
  // case from another platform: what one platform is known to get wrong must not hide
  // the same symptom elsewhere.
  std::string platform;
  std::string rule;         // the rule the platform breaks
  std::string description;  // what the platform does instead, where it was seen
  std::string reproducer;   // a pagelab command line that shows it
  // True when the case (expected verdict vs observation) is an instance of this.
  std::function<bool(const MatrixCase&)> matches;
  // After it the probe may have executed code it was not written for (a mode change
  // under its feet) and scribbled anywhere: the matrix takes a new Lab instead of
  // rewinding this one. A deviation that only leaves odd register contents is false.
  bool wrecks_probe = false;
};

const std::vector<Deviation>& known_deviations();

// A state the platform that runs `platform` (MatrixCase::platform) cannot survive, so a
// write that would make it is not tried: the reason, or nullopt. Today: kvm_amd with
// npt=1 inside QEMU TCG hangs for good on any guest state with EFER.LME=1, CR4.PAE=0,
// CR0.PG=0 (QEMU's emulated #VMEXIT: do_vmexit() calls cpu_x86_update_cr0() while the
// guest's LME/PAE are still loaded, and it returns early; KVM_RUN never returns).
std::optional<std::string> platform_wedge(const std::string& platform,
                                          const paging::ControlState& state);

// True when `d` was seen on the platform that ran `c` (see Deviation::platform).
bool deviation_applies(const Deviation& d, const MatrixCase& c);

// The first deviation in `list` for the case's platform matching the case, or nullptr.
const Deviation* find_deviation(const MatrixCase& c, const std::vector<Deviation>& list);

}  // namespace pagelab::lab

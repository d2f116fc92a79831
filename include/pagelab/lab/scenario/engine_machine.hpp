#pragma once
// The CPU behind a scenario, on any backend (KVM or QEMU, as LabOptions say): a fresh
// Lab and experiment Engine per scenario (engine/experiment.hpp), its page tables built
// in guest RAM, every access run by the probe.
#include <memory>
#include <optional>
#include <string>

#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::lab::scenario {

// Why scenarios cannot run on KVM here (no /dev/kvm, ...), or nothing.
std::optional<std::string> kvm_unavailable_reason();

// A machine that boots its own Lab (on options.backend) at start(). Each scenario
// needs a new one. `explain_every_access`: every access's walk in words (what the
// JSON report lists); without it only a disagreement is explained, which is what the
// text report prints, at a fraction of the cost.
std::unique_ptr<Machine> make_engine_machine(const LabOptions& options = {},
                                             bool explain_every_access = true);

}  // namespace pagelab::lab::scenario

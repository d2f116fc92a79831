#pragma once
// The CPU behind a scenario: a fresh Lab and experiment Engine per scenario
// (experiment.hpp), its page tables built in guest RAM, every access run by the probe
// and checked by the engine against the oracle.
#include <memory>
#include <optional>
#include <string>

#include "pagelab/lab/lab.hpp"
#include "pagelab/lab/scenario_run.hpp"

namespace pagelab::lab::scenario {

// Why scenarios cannot run on KVM here (no /dev/kvm, ...), or nothing.
std::optional<std::string> kvm_unavailable_reason();

// A machine that boots its own Lab at start(). Each scenario needs a new one.
std::unique_ptr<Machine> make_kvm_machine(const LabOptions& options = {});

}  // namespace pagelab::lab::scenario

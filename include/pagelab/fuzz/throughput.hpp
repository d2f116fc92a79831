#pragma once
// The fuzzer's throughput on one machine, for `pagelab bench`: checked fuzz cases per
// second and accesses per VM exit (doorbell), over cases of one seed in one mode, run
// the way `pagelab fuzz` runs them (batches of ModeRunner, every access judged).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "pagelab/fuzz/runner.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::fuzz {

struct ThroughputOptions {
  paging::PagingMode mode = paging::PagingMode::Level4;
  std::uint64_t seed = 1;
  std::uint64_t cases = 2048;                   // case numbers 0..cases-1
  std::size_t batch_cases = DefaultBatchCases;  // per ModeRunner::run, as a campaign's
};

struct Throughput {
  std::string mode;  // "4level"
  // The machine cannot enter the mode (PVM refuses legacy paging; LA57 missing): the
  // reason, and nothing was run.
  std::optional<std::string> unavailable;
  std::uint64_t cases = 0, accesses = 0, exits = 0;
  std::uint64_t failed = 0, known = 0, skipped = 0;  // verdicts of the cases
  double seconds = 0;
  // Of `seconds`, the time spent waiting for the guest (Lab::guest_time()); the rest is
  // the host's (planning, judging, syncing its model).
  double guest_seconds = 0;
  // CPU time: of the thread that ran the cases (pagelab's planning and judging, and on
  // KVM the guest inside KVM_RUN), and of the machine outside it (a QEMU process; zero
  // on KVM). Their sum per case bounds a campaign: with N CPUs busy, at most N over it.
  double host_cpu_seconds = 0, backend_cpu_seconds = 0;
  [[nodiscard]] double cases_per_second() const { return seconds > 0 ? cases / seconds : 0; }
  [[nodiscard]] double cpu_us_per_case(double cpu_seconds) const {
    return cases > 0 ? 1e6 * cpu_seconds / static_cast<double>(cases) : 0;
  }
  // The most cases per second `cpus` CPUs, all busy, give at `cpu_seconds` for these
  // cases (0 when that is no time at all).
  [[nodiscard]] double cases_per_second_bound(double cpu_seconds, unsigned cpus) const {
    return cpu_seconds > 0 ? cpus * static_cast<double>(cases) / cpu_seconds : 0;
  }
  [[nodiscard]] double accesses_per_exit() const {
    return exits > 0 ? static_cast<double>(accesses) / static_cast<double>(exits) : 0;
  }
};

// Runs the cases on `lab` (fresh or reset: real mode). A mode the machine cannot enter
// is `unavailable`; any other failure throws what the engine throws.
Throughput measure_throughput(lab::Lab& lab, const ThroughputOptions& options = {});

}  // namespace pagelab::fuzz

#pragma once
// `pagelab bench`: throughput of checked accesses through the experiment engine,
// measured in one run as ratios (accesses per second, per VM exit, the in-guest
// exception cost, the oracle's share of the time). No assertion on wall-clock time.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/lab/machine/lab.hpp"

namespace pagelab::lab {

struct BenchOptions {
  std::size_t batch = 4000;  // accesses per batch (at most Engine::batch_capacity())
  unsigned rounds = 3;       // batches per workload
};

struct BenchWorkload {
  std::string name;  // "cpl3-ok", "cpl3-fault", "cpl0-ok", "cpl0-fault", "mixed", ...
  std::size_t accesses = 0;
  double checked_seconds = 0, unchecked_seconds = 0;  // sums over the rounds
  // Seconds per access of each round: the minimum is the least disturbed (by the host,
  // by other processes), the median the typical one.
  std::vector<double> checked_rounds, unchecked_rounds;
  std::uint64_t exits = 0;        // host round trips (VM exits, doorbells) of the checked runs
  std::size_t disagreements = 0;  // checked results that did not agree
  [[nodiscard]] double checked_per_second() const { return 1 / median(checked_rounds); }
  [[nodiscard]] double unchecked_us_per_access() const { return 1e6 * min(unchecked_rounds); }
  [[nodiscard]] double unchecked_us_median() const { return 1e6 * median(unchecked_rounds); }
  static double min(const std::vector<double>& v);
  static double median(std::vector<double> v);
};

struct BenchResult {
  std::string backend;     // Backend::name(): "kvm", "qemu-tcg"
  std::string platform;    // describe_backend(): the KVM flavour on KVM
  std::string round_trip;  // Backend::round_trip_name(): "VM exits", "doorbells"
  std::vector<BenchWorkload> workloads;
  double accesses_per_exit = 0;
  double exception_cost_cpl3_us = 0;  // (cpl3-fault - cpl3-ok) per access, unchecked
  double exception_cost_cpl0_us = 0;  // (cpl0-fault - cpl0-ok) per access, unchecked
  double cpl3_fault_us = 0;           // per faulting CPL3 access, unchecked
  double cpl_round_trip_us = 0;       // CPL0 -> CPL3 -> CPL0 inside a batch, unchecked
  double oracle_share = 0;            // (checked - unchecked) / checked, all workloads
  [[nodiscard]] const BenchWorkload& workload(const std::string& name) const;
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] std::string text() const;
};

// Builds an engine in 4-level paging over `lab` (which must be fresh: real mode) and
// runs every workload. Throws what the engine throws.
BenchResult run_bench(Lab& lab, const BenchOptions& options = {});

}  // namespace pagelab::lab

#include "pagelab/lab/bench/engine_bench.hpp"
#include "pagelab/lab/report/json.hpp"

#include <algorithm>
#include <chrono>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/platform/platform.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab {
namespace {

using paging::AccessType;
using paging::Linear;
using paging::Privilege;
using Clock = std::chrono::steady_clock;

constexpr std::uint64_t Page = 4096;
constexpr unsigned DataPages = 16;
constexpr Linear RwBase{0x20000000};  // DataPages pages, U=1 R/W=1
constexpr Linear RoBase{0x21000000};  // DataPages pages, U=1 R/W=0

OpAccess make(Linear base, unsigned i, AccessType type, Privilege priv) {
  OpAccess a;
  a.address = base + (i % DataPages) * Page + 8 * (i % 500);
  a.type = type;
  a.privilege = priv;
  a.write_value = i;
  return a;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

const BenchWorkload& BenchResult::workload(const std::string& name) const {
  for (const auto& w : workloads)
    if (w.name == name) return w;
  throw std::out_of_range("no bench workload " + name);
}

BenchResult run_bench(Lab& lab, const BenchOptions& options) {
  if (options.batch == 0 || options.batch > Engine::batch_capacity()) {
    throw std::invalid_argument(fmt::format("batch size {} is out of range 1..{}", options.batch,
                                            Engine::batch_capacity()));
  }
  Engine engine(lab);
  auto& space = engine.space();
  space.map(RwBase, std::nullopt, DataPages * Page, paging::PageSize::Size4K,
            paging::Pte::User | paging::Pte::Writable);
  space.map(RoBase, std::nullopt, DataPages * Page, paging::PageSize::Size4K, paging::Pte::User);
  engine.start();

  struct Spec {
    const char* name;
    Linear base;
    AccessType type;
    Privilege priv;
  };
  // CPL0 writes to a read-only page fault because the engine sets CR0.WP.
  const Spec specs[] = {
      {"cpl3-ok", RwBase, AccessType::Read, Privilege::User},
      {"cpl3-fault", RoBase, AccessType::Write, Privilege::User},
      {"cpl0-ok", RwBase, AccessType::Read, Privilege::Supervisor},
      {"cpl0-fault", RoBase, AccessType::Write, Privilege::Supervisor},
  };
  std::vector<std::pair<std::string, std::vector<Op>>> loads;
  for (const auto& s : specs) {
    std::vector<Op> ops;
    for (unsigned i = 0; i < options.batch; ++i) ops.push_back(make(s.base, i, s.type, s.priv));
    loads.emplace_back(s.name, std::move(ops));
  }
  std::mt19937 rng(1);
  std::vector<Op> mixed;
  for (unsigned i = 0; i < options.batch; ++i) {
    const auto& s = specs[rng() % 4];
    const auto type = s.type == AccessType::Read && rng() % 2 ? AccessType::Write : s.type;
    mixed.push_back(make(s.base, i, type, s.priv));
  }
  // The same accesses as a fuzzer would batch them: grouped by privilege, so the batch
  // changes CPL once instead of at every other access (each change is an exception
  // round trip: see cpl-switch).
  std::vector<Op> grouped = mixed;
  std::stable_partition(grouped.begin(), grouped.end(), [](const Op& op) {
    return std::get<OpAccess>(op).privilege == Privilege::Supervisor;
  });
  loads.emplace_back("mixed", std::move(mixed));
  loads.emplace_back("mixed-by-cpl", std::move(grouped));
  // Succeeding reads alternating CPL0 and CPL3: the price of a privilege change.
  std::vector<Op> alternating;
  for (unsigned i = 0; i < options.batch; ++i) {
    alternating.push_back(
        make(RwBase, i, AccessType::Read, i % 2 != 0 ? Privilege::User : Privilege::Supervisor));
  }
  loads.emplace_back("cpl-switch", std::move(alternating));

  // Warm-up, both paths: the first touch of a page costs a shadow-paging fill on some
  // KVMs, and on QEMU the first run of each code path is translated (TCG) first.
  for (const auto& [name, ops] : loads) {
    engine.run_unchecked(ops);
    (void)engine.run(ops);
  }

  BenchResult result;
  result.backend = std::string(lab.backend_name());
  result.platform = describe_backend(lab);
  result.round_trip = std::string(lab.backend().round_trip_name());
  double checked_total = 0, unchecked_total = 0;
  std::uint64_t exits_total = 0;
  std::size_t accesses_total = 0;
  for (const auto& [name, ops] : loads) {
    BenchWorkload w;
    w.name = name;
    for (unsigned r = 0; r < options.rounds; ++r) {
      auto t = Clock::now();
      engine.run_unchecked(ops);
      const double unchecked = seconds_since(t);
      w.unchecked_seconds += unchecked;
      w.unchecked_rounds.push_back(unchecked / static_cast<double>(ops.size()));
      const auto exits = engine.vm_exits();
      t = Clock::now();
      const auto checked = engine.run(ops);
      const double checked_s = seconds_since(t);
      w.checked_seconds += checked_s;
      w.checked_rounds.push_back(checked_s / static_cast<double>(ops.size()));
      w.exits += engine.vm_exits() - exits;
      for (const auto& c : checked) w.disagreements += !c.agrees;
      w.accesses += ops.size();
    }
    checked_total += w.checked_seconds;
    unchecked_total += w.unchecked_seconds;
    exits_total += w.exits;
    accesses_total += w.accesses;
    result.workloads.push_back(std::move(w));
  }
  result.accesses_per_exit = static_cast<double>(accesses_total) / static_cast<double>(exits_total);
  // Costs are differences of the least disturbed rounds; a difference lost in the noise
  // is 0 (not measurable here), never negative.
  auto cost = [](double us) { return std::max(us, 0.0); };
  result.cpl3_fault_us = result.workload("cpl3-fault").unchecked_us_per_access();
  result.exception_cost_cpl3_us =
      cost(result.cpl3_fault_us - result.workload("cpl3-ok").unchecked_us_per_access());
  result.exception_cost_cpl0_us = cost(result.workload("cpl0-fault").unchecked_us_per_access() -
                                       result.workload("cpl0-ok").unchecked_us_per_access());
  // Per CPL0 -> CPL3 -> CPL0 round trip: two alternating accesses minus one of each.
  result.cpl_round_trip_us = cost(2 * result.workload("cpl-switch").unchecked_us_per_access() -
                                  result.workload("cpl0-ok").unchecked_us_per_access() -
                                  result.workload("cpl3-ok").unchecked_us_per_access());
  result.oracle_share = std::clamp((checked_total - unchecked_total) / checked_total, 0.0, 1.0);
  return result;
}

double BenchWorkload::min(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}

double BenchWorkload::median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

nlohmann::json BenchResult::to_json() const {
  nlohmann::json j = report::document("bench");
  j["backend"] = backend;
  j["platform"] = platform;
  // "vm_exits" keeps its name on every backend (scripts read it); round_trips says
  // what they were.
  j["round_trips"] = round_trip;
  for (const auto& w : workloads) {
    j["workloads"].push_back({{"name", w.name},
                              {"accesses", w.accesses},
                              {"checked_per_second", w.checked_per_second()},
                              {"unchecked_us_per_access", w.unchecked_us_per_access()},
                              {"unchecked_us_per_access_median", w.unchecked_us_median()},
                              {"rounds", w.unchecked_rounds.size()},
                              {"vm_exits", w.exits},
                              {"disagreements", w.disagreements},
                              {"verdict", w.disagreements == 0 ? "passed" : "failed"}});
  }
  j["accesses_per_vm_exit"] = accesses_per_exit;
  j["exception_cost_us"] = {{"cpl3", exception_cost_cpl3_us}, {"cpl0", exception_cost_cpl0_us}};
  j["cpl3_fault_us_per_access"] = cpl3_fault_us;
  j["cpl_round_trip_us"] = cpl_round_trip_us;
  if (exception_cost_cpl3_us > 0) {
    j["cpl3_fault_over_exception_cost"] = cpl3_fault_us / exception_cost_cpl3_us;
  } else {
    j["cpl3_fault_over_exception_cost"] = nullptr;  // no measurable exception cost
  }
  j["oracle_share"] = oracle_share;
  return j;
}

std::string BenchResult::text() const {
  std::string out = fmt::format("backend: {}\nplatform: {}\n", backend, platform);
  const std::size_t rounds = workloads.empty() ? 0 : workloads.front().unchecked_rounds.size();
  out += fmt::format(
      "after a warm-up run of every workload; {} round{} each: checked/s is the "
      "median round, unchecked us/acc the fastest (min) and the median\n",
      rounds, rounds == 1 ? "" : "s");
  out += fmt::format("{:<12} {:>9} {:>14} {:>10} {:>10} {:>9} {:>13}\n", "workload", "accesses",
                     "checked/s", "min us", "median us", round_trip, "disagreements");
  for (const auto& w : workloads) {
    out += fmt::format("{:<12} {:>9} {:>14.0f} {:>10.3f} {:>10.3f} {:>9} {:>13}\n", w.name,
                       w.accesses, w.checked_per_second(), w.unchecked_us_per_access(),
                       w.unchecked_us_median(), w.exits, w.disagreements);
  }
  // "VM exits" -> "VM exit", "doorbells" -> "doorbell".
  const std::string one = !round_trip.empty() && round_trip.back() == 's'
                              ? round_trip.substr(0, round_trip.size() - 1)
                              : round_trip;
  out += fmt::format("accesses per {}: {:.0f}\n", one, accesses_per_exit);
  out += fmt::format(
      "in-guest exception cost (faulting - succeeding, per access): CPL3 {:.2f} us, CPL0 {:.2f} "
      "us\n",
      exception_cost_cpl3_us, exception_cost_cpl0_us);
  out +=
      fmt::format("CPL0 -> CPL3 -> CPL0 round trip inside a batch: {:.2f} us\n", cpl_round_trip_us);
  if (exception_cost_cpl3_us > 0) {
    out += fmt::format("faulting CPL3 access: {:.2f} us = {:.2f}x the CPL3 exception cost\n",
                       cpl3_fault_us, cpl3_fault_us / exception_cost_cpl3_us);
  } else {
    out += fmt::format(
        "faulting CPL3 access: {:.2f} us (the exception cost is not measurable "
        "here: within the noise)\n",
        cpl3_fault_us);
  }
  out += fmt::format("oracle's share of the checked time: {:.1f}%\n", 100 * oracle_share);
  return out;
}

}  // namespace pagelab::lab

#pragma once
// The engine's state between batches (private to vmm/lab).
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "pagelab/lab/experiment.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "tlb_model.hpp"

namespace pagelab::lab {

struct Engine::Impl {
  explicit Impl(Lab& lab);

  Lab& lab;
  paging::CpuState state;
  // Guest RAM as it was before the batch being checked, then moved forward op by op
  // with what the architecture says each op does: the oracle walks this.
  paging::BufferMemory model;
  TlbModel tlb;
  std::map<std::uint64_t, std::uint64_t> lies;  // override_oracle_memory()
  std::map<std::uint64_t, std::uint64_t>
      foreign_old;  // entry GPA -> value before the host wrote it
  std::vector<std::string> ad_violations;
  std::vector<std::string> notes;
  std::uint64_t exits = 0;
  std::string deviation_prefix;  // "pvm-" on PVM
  bool has_invpcid = false, has_pku = false;

  void note(const std::string& text);
  void sync_model();
  void run_chunk(std::span<const Op> ops, std::vector<CheckedResult>& out, bool check);
  void check_chunk(std::span<CheckedResult> results);
  void check_access(CheckedResult& r,
                    std::map<std::uint64_t, std::pair<bool, std::size_t>>& entries,
                    std::set<std::uint64_t>& uncertain, std::size_t index);
  void apply_control(CheckedResult& r);
  [[nodiscard]] std::string instruction_at(std::uint64_t rip) const;
  static paging::Outcome outcome_for(const paging::Walk& w, std::uint64_t walked_va,
                                     paging::Linear va);

  struct Memo {
    std::uint64_t va;
    paging::Walk walk;
  };
  std::unordered_map<std::uint64_t, Memo> memo;  // by page, access type, privilege, AC
};

// Readable texts (engine_report.cpp).
std::string walk_text(const paging::Walk& walk);
std::string observed_text(const Op& op, const OpResult& r);

}  // namespace pagelab::lab

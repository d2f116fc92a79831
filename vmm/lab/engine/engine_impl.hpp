#pragma once
// The engine's state between batches (private to vmm/lab).
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "judge/tlb_model.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/paging/physical_memory.hpp"

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
  std::string platform;  // platform_tag(): how access deviations name it
  paging::PagingMode mode = paging::PagingMode::Level4;
  // AMD's APM has no PDPTE registers: legacy PAE walks may read the PDPT in memory.
  bool pdpt_walked = false;
  bool has_invpcid = false, has_pku = false;

  [[nodiscard]] unsigned entry_bytes() const { return paging::entry_bytes(mode); }
  [[nodiscard]] unsigned code_bits() const;  // of the dispatcher batches run in
  // One paging-structure entry of this mode (4 bytes in 32-bit paging).
  [[nodiscard]] std::uint64_t read_entry(const paging::PhysicalMemory& m,
                                         paging::GuestPhys a) const;
  void write_entry(paging::PhysicalMemory& m, paging::GuestPhys a, std::uint64_t v) const;
  // PAE: the PDPTEs at `s`'s CR3 as they are in the model's memory now (no reserved-bit
  // check: what a walk that reads the PDPT finds).
  [[nodiscard]] std::array<std::uint64_t, 4> pdptes_in_memory(const paging::CpuState& s) const;
  // QEMU TCG sets bit 5 (A) of PAE PDPTEs when it walks them, a bit SDM table 4-8
  // reserves: once seen, the engine reads PDPTEs without it (and notes why).
  bool platform_sets_pdpte_accessed = false;
  [[nodiscard]] std::uint64_t pdpte_as_loaded(std::uint64_t value) const;
  // What MOV CR3 / CR0 / CR4 loads into the PDPTE registers from `memory` (walker.hpp).
  std::optional<paging::GeneralProtection> load_pdptes(const paging::PhysicalMemory& memory,
                                                       paging::CpuState& s) const;

  void note(const std::string& text);
  void sync_model();
  void run_chunk(std::span<const Op> ops, std::vector<CheckedResult>& out, bool check);
  void check_chunk(std::span<CheckedResult> results);
  void check_access(CheckedResult& r,
                    std::map<std::uint64_t, std::pair<bool, std::size_t>>& entries,
                    std::set<std::uint64_t>& uncertain, std::size_t index);
  void apply_control(CheckedResult& r);
  void reload_pdptes(CheckedResult& r);
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

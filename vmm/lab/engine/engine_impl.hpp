#pragma once
// The engine's state between batches (private to vmm/lab).
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/judge/access_deviations.hpp"
#include "pagelab/lab/judge/judge.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::lab {

class HostWrites;

struct Engine::Impl {
  explicit Impl(Lab& lab);

  Lab& lab;
  // Guest RAM as it was before the batch being checked, then moved forward op by op
  // with what the architecture says each op does: the judge reads this.
  paging::BufferMemory model;
  judge::Judge judge;                           // the one judge (judge/judge.hpp)
  std::map<std::uint64_t, std::uint64_t> lies;  // override_oracle_memory()
  std::vector<std::string> ad_violations;
  std::vector<std::string> notes;
  std::uint64_t exits = 0;
  std::vector<std::string> platform;  // platform_keys(): how access deviations name it
  bool keeps_after_fault = false;     // keeps_tlb_entries_across_faults(platform)
  // The known access deviations that apply to this platform, in the list's order.
  std::vector<const AccessDeviation*> deviations;
  // The A/D bits the known deviations that apply may set in a leaf, by page size and
  // whether the access faulted (ad_deviations.hpp): asked at every entry an access used.
  std::array<std::uint64_t, 8> ad_may_set{};
  [[nodiscard]] static std::size_t ad_index(paging::PageSize size, bool faulted) {
    return static_cast<std::size_t>(size) * 2 + (faulted ? 1 : 0);
  }
  paging::PagingMode mode = paging::PagingMode::Level4;
  bool has_invpcid = false, has_pku = false;
  bool explain_all = false;              // EngineOptions::explain_all
  bool explain_deviations = true;        // EngineOptions::explain_deviations
  bool keep_agreeing_judgements = true;  // EngineOptions::keep_agreeing_judgements
  bool keep_agreeing_entries = true;     // EngineOptions::keep_agreeing_entries
  judge::Judgement scratch;  // an access's judgement when it is not kept: storage reused
  judge::AccessVerdict scratch_verdict;  // likewise, what commit() found
  [[nodiscard]] const paging::CpuState& state() const { return judge.state(); }

  [[nodiscard]] unsigned entry_bytes() const { return paging::entry_bytes(mode); }
  [[nodiscard]] unsigned code_bits() const;  // of the dispatcher batches run in
  // One paging-structure entry of this mode (4 bytes in 32-bit paging).
  [[nodiscard]] std::uint64_t read_entry(const paging::PhysicalMemory& m,
                                         paging::GuestPhys a) const;
  void write_entry(paging::PhysicalMemory& m, paging::GuestPhys a, std::uint64_t v) const;
  void note(const std::string& text);
  void note_deviation(const std::string& id, const std::string& description);
  // The page a leaf at `level` maps in this mode.
  [[nodiscard]] paging::PageSize leaf_size(unsigned level) const;
  // How a batch's accesses used one paging-structure entry (the A/D read-back).
  struct EntryUse {
    bool leaf = false;
    unsigned level = 0;
    std::size_t last = 0;   // the last result that used it
    std::uint64_t may = 0;  // A/D bits the accesses since it was written may have set
    // An access that faulted used it as a leaf (of the largest such page).
    bool faulted_as_leaf = false;
    paging::PageSize faulted_leaf_size = paging::PageSize::Size4K;
    // Bits an access may or may not have set that the read-back cannot tell apart
    // (unpredictable A/D): not checked, until the guest writes the entry again.
    bool uncertain = false;
  };
  // Brings the model up to RAM before a checked batch: all of it after start(), then
  // only the pages the host wrote and the words the last batch's accesses touched.
  void sync_model();
  HostWrites* host_writes = nullptr;
  bool full_sync = true;
  // 8-byte words to copy from RAM at the next sync; a word may be listed twice (copying
  // it again costs less than a set insert per word an access used).
  std::vector<std::uint64_t> resync;
  std::vector<std::uint64_t> written;  // words checked writes may have stored to (taken)
  bool track_written = false;          // EngineOptions::track_written_words
  // Runs a prefix of `ops` as one batch; returns how many it ran (it stops before a
  // fetch whose planted instruction an earlier access of the batch touches).
  std::size_t run_chunk(std::span<const Op> ops, std::vector<CheckedResult>& out, bool check);
  void check_chunk(std::span<CheckedResult> results);
  void check_access(CheckedResult& r, std::map<std::uint64_t, EntryUse>& entries,
                    std::size_t index);
  void apply_control(CheckedResult& r);
  void reload_pdptes(CheckedResult& r);
  [[nodiscard]] std::string disagreement_text(const CheckedResult& r, const judge::Judgement& j,
                                              const std::optional<paging::Walk>& foreign) const;
  [[nodiscard]] std::string instruction_at(std::uint64_t rip) const;
};

// Readable texts (engine_report.cpp).
std::string walk_text(const paging::Walk& walk);
std::string observed_text(const Op& op, const OpResult& r);

}  // namespace pagelab::lab

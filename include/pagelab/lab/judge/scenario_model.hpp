#pragma once
// A scenario's program applied to a model machine: guest-physical memory with the page
// tables the statements build, and the one judge (judge.hpp) that holds the control
// state and the translation caches' history, so that every access gets the set of
// outcomes the architecture allows (stale translations included while an entry changed
// without INVLPG / MOV CR3).
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "pagelab/lab/judge/judge.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/page_table_builder.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab::scenario {

// Where page tables go unless a `tables` statement says otherwise (above the lab's own
// identity maps at 0x100000, below the 16 MiB of RAM).
inline constexpr std::uint64_t DefaultTablesBase = 0x300000;
inline constexpr std::uint64_t TablesArea = 1 << 20;
inline constexpr std::uint64_t DefaultMemoryBytes = 16 << 20;

// A CPU with every paging feature, for judging scenarios without a CPU.
paging::CpuFeatures full_features();

// A scenario's accesses are judged by the one judge (judge.hpp).
using AllowedOutcome = judge::Allowed;
using AccessJudgement = judge::Judgement;

// A store a statement made to guest-physical memory (a table entry, a cleared table,
// poked data), with the value the memory holds afterwards.
struct MemoryChange {
  paging::GuestPhys address;
  unsigned bytes = 8;  // 4 or 8
  std::uint64_t value = 0;
};

class ScenarioModel {
 public:
  explicit ScenarioModel(paging::CpuFeatures features = full_features(),
                         std::uint64_t memory_bytes = DefaultMemoryBytes);
  ~ScenarioModel();
  ScenarioModel(ScenarioModel&&) noexcept;
  ScenarioModel& operator=(ScenarioModel&&) noexcept;
  // Adopts tables someone else built (a CPU's): a copy of `ram`, the hierarchy at
  // state.root(), and new tables from [tables_from, tables_limit).
  ScenarioModel(const paging::PhysicalMemory& ram, const paging::CpuState& state,
                paging::GuestPhys tables_from, paging::GuestPhys tables_limit);

  // Applies a statement that is not an access. Throws ScenarioError at the statement
  // when the architecture or the builder refuses it (e.g. a misaligned map).
  void apply(const Statement& statement);
  // What the last apply() stored, in address order: only the words it changed.
  [[nodiscard]] const std::vector<MemoryChange>& last_changes() const { return changes_; }
  // What the architecture allows for this access now.
  [[nodiscard]] AccessJudgement judge(const AccessStep& step) const;
  // Records that the access happened as `observed` says (nullptr: no CPU, the fresh
  // outcome): A/D bits, the written data, and what may now be cached. Remembers each
  // level's entry before and after, for `expect ad`.
  judge::AccessVerdict commit(const AccessStep& step, const AccessJudgement& judgement,
                              const judge::Observed* observed);

  // Moves the model past an access as a CPU that walks the tables would (A/D, data),
  // without judging it: when a CPU runs the scenario, its engine's judge does that.
  void advance(const AccessStep& step);

  // A/D bits `level` may have after the last committed access: each a set of {0,1}.
  struct AdAllowed {
    bool reached = false;  // the walk read an entry at this level
    std::vector<bool> accessed, dirty;
    std::uint64_t entry_address = 0;
  };
  [[nodiscard]] AdAllowed ad_allowed(unsigned level) const;
  // The same from what an access did to its entries (judge::AccessVerdict::entries).
  [[nodiscard]] static AdAllowed ad_allowed(const std::vector<judge::EntryEffect>& entries,
                                            unsigned level);

  [[nodiscard]] const paging::CpuState& state() const { return state_; }
  // The state for one access (RFLAGS.AC per access).
  [[nodiscard]] paging::CpuState state_for(const AccessStep& step) const;
  [[nodiscard]] paging::BufferMemory& memory() { return *memory_; }
  [[nodiscard]] const paging::BufferMemory& memory() const { return *memory_; }
  [[nodiscard]] paging::PagingMode mode() const { return mode_; }
  [[nodiscard]] bool built() const { return builder_ != nullptr; }
  // Builds the root table if no statement has yet.
  void ensure_built();
  [[nodiscard]] std::uint64_t read_entry(paging::Linear va, unsigned level) const;
  [[nodiscard]] paging::GuestPhys entry_address(paging::Linear va, unsigned level) const;

 private:
  void write_data(paging::GuestPhys pa, unsigned size, std::uint64_t value);
  [[nodiscard]] judge::Judge& the_judge();

  paging::CpuFeatures features_;
  // On the heap: the builder and the judge hold references that must survive moving
  // the model.
  std::unique_ptr<paging::BufferMemory> memory_;
  class ChangeLog;  // the builder's and the statements' view of memory_: records stores
  std::unique_ptr<ChangeLog> log_;
  std::vector<MemoryChange> changes_;
  paging::PagingMode mode_ = paging::PagingMode::Level4;
  paging::GuestPhys tables_base_{DefaultTablesBase};
  std::unique_ptr<paging::FrameAllocator> frames_;
  std::unique_ptr<paging::PageTableBuilder> builder_;
  // The control state until the tables are built; then the judge's.
  paging::CpuState state_;
  std::unique_ptr<judge::Judge> judge_;
  bool any_access_ = false;
  std::vector<judge::EntryEffect> last_;  // the last access's entries
};

using judge::read_bytes;

}  // namespace pagelab::lab::scenario

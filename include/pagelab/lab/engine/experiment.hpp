#pragma once
// The experiment engine: page tables in guest memory (ExperimentSpace), batches of
// probe operations run with one VM exit per batch (PROBE_CMD_BATCH, probe_abi.h), and
// every observed result checked against the oracle (paging/walker.hpp), including
// stale translations after entry changes without invalidation and the A/D bits of
// every level read back after the batch.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "pagelab/lab/judge/judge.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/machine/probe_report.hpp"
#include "pagelab/paging/address.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/page_table_builder.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab {

// One access by the probe. `size` is 1, 2, 4 or 8 (a fetch executes a 2-byte
// instruction the engine plants at the translated address; size is ignored).
// `ac` is RFLAGS.AC during a supervisor access (SMAP); ignored at CPL3.
struct OpAccess {
  paging::Linear address;
  paging::AccessType type = paging::AccessType::Read;
  unsigned size = 8;
  paging::Privilege privilege = paging::Privilege::Supervisor;
  bool ac = false;
  std::uint64_t write_value = 0;
  // A read whose value the front-end checks itself (the matrix's A/D read-back of an
  // entry whose bits the CPU may or may not have set): judged and committed like any
  // access, but a disagreement is neither matched to a known deviation nor explained.
  bool checked_by_caller = false;
  // Explain this access's walks in CheckedResult::judgement even when it agrees (a
  // scenario access with `expect` lines: a failed expectation prints them).
  bool explain = false;
};
// A store of `value` to the paging-structure entry at `entry`, done by the probe at
// CPL0 (through the identity map of the table pool). No invalidation is implied.
struct OpWriteEntry {
  paging::GuestPhys entry;
  std::uint64_t value;
};
// A store by the host into guest RAM at this point of the batch: the probe waits at a
// sync point (one more round trip, no new command) while the host writes.
struct OpForeignWrite {
  paging::GuestPhys address;
  std::uint64_t value;
};
enum class ControlRegister { Cr0, Cr3, Cr4, Efer, Pkru };
struct OpWriteControl {
  ControlRegister reg;
  std::uint64_t value;  // Cr3: may carry Cr3::NoFlush (used only with CR4.PCIDE)
};
struct OpInvlpg {
  paging::Linear address;
};
struct OpInvpcid {
  unsigned type;  // 0..3
  std::uint64_t pcid;
  paging::Linear address;
};
struct OpTogglePge {};  // clear then restore CR4.PGE: flushes every TLB entry
struct OpReadControl {};
struct OpFence {};
using Op = std::variant<OpAccess, OpWriteEntry, OpForeignWrite, OpWriteControl, OpInvlpg, OpInvpcid,
                        OpTogglePge, OpReadControl, OpFence>;

// What the probe wrote for one operation. cr0/cr3/cr4/efer are filled by
// OpReadControl only. A skipped operation (not run) has status BadCommand.
struct OpResult {
  ProbeStatus status = ProbeStatus::Ok;
  std::uint32_t vector = 0;
  std::uint64_t error_code = 0, cr2 = 0, rip = 0, value = 0;
  std::uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

struct CheckedResult {
  Op op;
  OpResult observed;
  // Accesses only: what the architecture allows (fresh walk first, then stale ones).
  std::vector<paging::Outcome> allowed;
  // Accesses only: the judge's whole answer (allowed outcomes with the values reads
  // would return, the walks behind them) and what the access did to each entry.
  // Held apart: a judgement is a kilobyte, and a batch makes thousands of results, most
  // of which keep none.
  std::shared_ptr<judge::Judgement> judgement;
  std::vector<judge::EntryEffect> entries;
  bool agrees = true;
  // When !agrees (or a deviation): the access, the walks level by level, the allowed
  // set, what was observed and the instruction at the faulting RIP.
  std::string report;
  // The platform cannot do this operation; the reason. Not run, agrees stays true.
  std::optional<std::string> skipped;
  // A known, named platform deviation explains the disagreement
  // (e.g. "pvm-host-pte-write-invisible"); agrees is false.
  std::optional<std::string> deviation;
  // One line: "read8 U 0x400000 -> ok value=0x..." / "#PF(0x5) cr2=...".
  [[nodiscard]] std::string summary() const;
};

struct EngineOptions {
  // Bits32, Pae, Level4 or Level5. Legacy modes are entered from protected mode with
  // CR0.PG; a platform that refuses that (PVM: #GP(0)) makes start() throw.
  paging::PagingMode mode = paging::PagingMode::Level4;
  // Applied when entering the mode (the engine always sets CR0.WP, CR4.PSE in 32-bit
  // paging where the CPU has PSE, and EFER.NXE in PAE and up when the CPU has NX;
  // clear them here).
  std::uint64_t cr0_set = 0, cr0_clear = 0, cr4_set = 0, cr4_clear = 0, efer_set = 0,
                efer_clear = 0;
  // Explain every access's walks in CheckedResult::judgement (a scenario prints them);
  // otherwise only a disagreement is explained, and judging costs no text.
  bool explain_all = false;
  // Explain a disagreement that a known deviation names (its walks, the instruction at
  // RIP). A front-end that only counts deviations by name (the permission matrix, where
  // TCG's reserved-bit deviation is most cases of some modes) turns this off: the report
  // is then empty (summary() still describes the access), and the deviation is still named.
  bool explain_deviations = true;
  // Keep, for an access the judge agrees with, its allowed outcomes and judgement
  // (CheckedResult::allowed, judgement). A front-end that only counts agreeing cases (the
  // permission matrix) turns this off and saves their copies; a disagreement keeps both.
  bool keep_agreeing_judgements = true;
  // Keep, for an access the judge agrees with, what it did to each entry
  // (CheckedResult::entries): the permission matrix reads A/D back through them; the
  // fuzzer, which lets the engine read A/D back, does not, and saves a list per access.
  bool keep_agreeing_entries = true;
  // Remember where checked writes may have stored, for take_written_words().
  bool track_written_words = false;
};

// Guest-physical areas the engine uses (all inside the default 16 MiB of RAM).
struct ExperimentLayout {
  static constexpr std::uint64_t TablePoolBase = 0x400000;  // page tables (identity-mapped)
  static constexpr std::uint64_t TablePoolLimit = 0x600000;
  static constexpr std::uint64_t FramePoolBase = 0x600000;  // frames for map(..., auto)
  static constexpr std::uint64_t FramePoolLimit = 0x1000000;
};

// A CR3 hierarchy in guest RAM that identity-maps what the probe needs (supervisor)
// plus its user alias (PROBE_USER_ALIAS, or PROBE_USER_ALIAS32 in 32-bit and PAE
// paging; user), and experiment ranges on top.
// Host-side edits here are for setting up before Engine::start() (or between batches
// as a deliberate foreign write: see OpForeignWrite and platform_notes()).
class ExperimentSpace {
 public:
  ExperimentSpace(paging::PhysicalMemory& memory, paging::PagingMode mode,
                  paging::CpuFeatures features);

  // Maps [va, va+length) to explicit frames starting at `pa`, or (pa = nullopt) to
  // fresh zeroed frames from the frame pool. Leaf flags are Pte:: bits (Present
  // implied). Throws std::invalid_argument on overlap with the probe's own ranges.
  // Returns the first frame.
  paging::GuestPhys map(paging::Linear va, std::optional<paging::GuestPhys> pa,
                        std::uint64_t length, paging::PageSize size, std::uint64_t leaf_flags);
  void unmap(paging::Linear va, std::uint64_t length);
  void protect(paging::Linear va, std::uint64_t length, std::uint64_t set_flags,
               std::uint64_t clear_flags);
  void set_recursive(unsigned top_index);
  [[nodiscard]] paging::GuestPhys entry_address(paging::Linear va, unsigned level) const;
  [[nodiscard]] std::uint64_t read_entry(paging::Linear va, unsigned level) const;
  paging::PageTableBuilder& builder() { return *builder_; }
  [[nodiscard]] paging::GuestPhys root() const { return builder_->root(); }
  paging::GuestPhys allocate_frame();  // zeroed, from the frame pool

 private:
  void check_free(paging::Linear va, std::uint64_t length) const;
  // Sets A in every entry that maps [va, va+length) with `size` pages, and D in its
  // leaves where the probe writes.
  void settle(paging::Linear va, std::uint64_t length, paging::PageSize size,
              paging::PagingMode mode, bool written);
  paging::PhysicalMemory& memory_;
  paging::FrameAllocator tables_, frames_;
  std::uint64_t user_alias_;
  std::unique_ptr<paging::PageTableBuilder> builder_;
};

class HostWrites;

class Engine {
 public:
  explicit Engine(Lab& lab, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  ExperimentSpace& space() { return space_; }
  // Enters the mode with space().root() as CR3 (after the caller mapped what it
  // needs), applies the options, and reads back the state the oracle will assume.
  // Throws std::runtime_error naming the step (e.g. a refused CR4 bit, or "32-bit paging
  // refused by the platform: MOV CR0 setting PG with EFER.LME=0 raised #GP(0) at ...").
  void start();
  [[nodiscard]] bool started() const { return started_; }
  // Runs and checks the operations: one command per batch (split beyond
  // batch_capacity()), one VM exit more per foreign write.
  std::vector<CheckedResult> run(std::span<const Op> batch);
  // Runs without checking (for `bench`: the oracle's share of the time).
  std::vector<OpResult> run_unchecked(std::span<const Op> batch);
  [[nodiscard]] static std::size_t batch_capacity();

  [[nodiscard]] paging::CpuState cpu_state() const;  // what the oracle assumes now
  // Lets a test lie to the oracle (e.g. to see a readable failure). Kept until start().
  void override_oracle_memory(paging::GuestPhys address, std::uint64_t value);
  // EngineOptions::explain_deviations, changed between batches.
  void set_explain_deviations(bool explain);
  // The 8-byte words (guest-physical) that checked writes since the last call may have
  // stored to: every place an allowed translation names.
  std::vector<std::uint64_t> take_written_words();
  [[nodiscard]] std::vector<std::string> ad_violations() const;   // from the last batch
  [[nodiscard]] std::uint64_t vm_exits() const;                   // by this engine
  [[nodiscard]] std::vector<std::string> platform_notes() const;  // limits/deviations met
  Lab& lab() { return lab_; }

  struct Impl;

 private:
  Lab& lab_;
  EngineOptions options_;
  // Before space_: the space writes guest RAM through it.
  std::unique_ptr<HostWrites> host_writes_;
  ExperimentSpace space_;
  bool started_ = false;
  void start_legacy(const paging::CpuFeatures& features);
  std::unique_ptr<Impl> impl_;
};

// "read8", "write4", "fetch", "write-entry", "write-cr3", "invlpg", ...
std::string op_name(const Op& op);

}  // namespace pagelab::lab

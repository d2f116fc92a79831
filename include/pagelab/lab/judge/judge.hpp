#pragma once
// The one judge (DESIGN.md, "One case pipeline"): the model of what the architecture
// allows, used by every front-end. It holds the page tables and data in (a model of)
// guest-physical memory, the control state, and the translation caches' history since
// the last invalidation (translation_cache.hpp), and for each access answers with the
// set of allowed outcomes; given what a CPU did, it says whether that is allowed and
// moves the model forward (A/D bits, written data, what may now be cached).
//
// The judge only decides. Front-ends (the engine's batches, scenarios, the matrix, the
// fuzzer) feed it their program in order and explain only what they print.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pagelab/lab/judge/translation_cache.hpp"
#include "pagelab/paging/address.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/decide.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab::judge {

// `size` bytes little-endian at `pa` (any alignment), read and written through the
// aligned 64-bit words that hold them.
std::uint64_t read_bytes(const paging::PhysicalMemory& memory, paging::GuestPhys pa, unsigned size);
void write_bytes(paging::PhysicalMemory& memory, paging::GuestPhys pa, unsigned size,
                 std::uint64_t value);

// What a CPU did for one access, whatever ran it.
struct Observed {
  enum class Kind { Ok, Fault } kind = Kind::Ok;
  std::uint32_t vector = 0;
  std::uint64_t error_code = 0, cr2 = 0;
  std::uint64_t value = 0;  // a read that succeeded
};

// One outcome the architecture allows, with the value a read would return.
struct Allowed {
  Allowed() = default;
  Allowed(paging::Outcome o, bool from_cache) : outcome(std::move(o)), stale(from_cache) {}
  paging::Outcome outcome;
  std::uint64_t value = 0;  // reads that translate to guest RAM
  bool stale = false;       // from a translation the CPU may still cache
  bool value_known = true;  // false when the page is not guest RAM (e.g. above 4 GiB)
  // A read whose bytes hold a paging-structure entry its own walk sets A (or D) in (a
  // page table mapped as data): the walk sets them before the access completes (SDM
  // vol. 3A §4.8), and the read may return the entry before or after the update. The
  // values after: `value` with this access's A/D updates applied to the bytes read
  // (for an access that crosses a page: the first page's, the second's, or both).
  // `matches()` accepts `value` or any of these.
  std::array<std::uint64_t, 3> values_after_ad{};
  unsigned values_after_ad_count = 0;
  // An access that crosses a page boundary: its first `split_at` bytes go to the
  // translation's physical address, the rest to `second_physical`.
  unsigned split_at = 0;
  paging::GuestPhys second_physical;
};

struct Judgement {
  std::vector<Allowed> allowed;  // the fresh outcome first
  // What the fresh walk decided (and, for an access that crosses into the next page,
  // the second page's): the entries the access uses, what may now be cached.
  paging::Decision decided;
  std::optional<paging::Decision> decided_second;
  std::vector<paging::Decision> decided_others;  // stale and other walks considered
  // For each of decided_others: the page it is for and the rules it was decided under
  // (the NXE, PSE, vendor and PDPTEs frozen in a cached walk). A CPU that answered from
  // such a walk may now hold its translation in the TLB, under those rules.
  struct Under {
    paging::Linear page;
    paging::CpuState rules;
  };
  std::vector<Under> others_under;
  // A translation cache holds a walk of this page whose entries are unchanged but for
  // A/D: the CPU may answer from it and set no A/D bit the fresh walk would set.
  bool cache_may_answer = false;
  // The explanation, only when asked for (Explain::Yes): the same walks, level by level.
  paging::Walk fresh;                // over the tables as they are now
  std::vector<paging::Walk> others;  // other walks considered (stale, second page, ...)
  std::optional<paging::Walk> fresh_second;
  bool explained = false;
};

enum class Explain { No, Yes };

// What an access did to one paging-structure entry: its value before, the A/D bits
// the access must have set and those it may have set.
struct EntryEffect {
  unsigned level = 0;
  std::uint64_t address = 0, before = 0;
  std::uint64_t must_set = 0, may_set = 0;
  bool leaf = false;
  // The last entry a walk read maps a page by its own bits (PS), even where the walk
  // stopped there on reserved bits: a platform that sets A in a leaf before checking it
  // (a known deviation) may have set it.
  bool maps_page = false;
};

struct AccessVerdict {
  static constexpr std::size_t None = static_cast<std::size_t>(-1);
  std::size_t matched = None;  // index into Judgement::allowed, None: disallowed
  [[nodiscard]] bool agrees() const { return matched != None; }
  // The entries the access used (every walk considered), and whether the A/D bits the
  // CPU left there can be predicted (not after a stale or unexplained outcome).
  std::vector<EntryEffect> entries;
  bool ad_predictable = true;
};

struct JudgeOptions {
  // AMD's APM keeps no PDPTE registers in legacy PAE: a walk may read a PDPTE changed
  // in memory since the last MOV CR3.
  bool pdpt_walked = false;
  // A platform (QEMU TCG) that sets bit 5 (A) of the PAE PDPTEs it walks, a bit SDM
  // table 4-8 reserves there: PDPTEs are loaded without it.
  bool pdpte_accessed_ignored = false;
};

class Judge {
 public:
  // `memory` is the model of guest-physical memory the judge reads and moves forward
  // (owned by the caller, which may also write to it between operations).
  Judge(paging::PhysicalMemory& memory, const paging::CpuState& state, JudgeOptions options = {});

  [[nodiscard]] const paging::CpuState& state() const { return state_; }
  [[nodiscard]] const JudgeOptions& options() const { return options_; }
  void set_options(const JudgeOptions& options) { options_ = options; }
  [[nodiscard]] paging::PhysicalMemory& memory() const { return memory_; }
  [[nodiscard]] const TranslationCache& caches() const { return caches_; }
  // Adopts a state as loaded from scratch (a mode entered, a CPU's registers read):
  // nothing cached.
  void reset(const paging::CpuState& state);

  // Control writes, with the invalidations SDM §4.10.4.1 attaches to each.
  // MOV CR3: flushes all but global translations unless CR4.PCIDE and bit 63; in PAE
  // paging loads the PDPTE registers, or returns #GP(0) and changes nothing.
  std::optional<paging::GeneralProtection> write_cr3(std::uint64_t value);
  // MOV CR3 in PAE paging that succeeded although a PDPTE has reserved bits: allowed
  // where PDPTEs are walked, not loaded (options().pdpt_walked).
  void write_cr3_walked(std::uint64_t value);
  // What MOV CR3 / CR0 / CR4 loads into the PDPTE registers of `state` (walker.hpp),
  // as this platform loads them.
  std::optional<paging::GeneralProtection> load_pdptes(paging::CpuState& state) const;
  [[nodiscard]] std::array<std::uint64_t, 4> pdptes_in_memory(const paging::CpuState& state) const;
  void write_cr0(std::uint64_t value);   // PG changing flushes everything
  void write_cr4(std::uint64_t value);   // PGE changing flushes everything (PSE: nothing)
  void write_efer(std::uint64_t value);  // WRMSR invalidates nothing
  void write_pkru(std::uint32_t value);  // WRPKRU invalidates nothing
  void invlpg(paging::Linear va);
  void invpcid(unsigned type, paging::Linear va);
  void toggle_pge();
  // The guest or the host stored `value` in a paging-structure entry (no invalidation).
  void write_entry(paging::GuestPhys at, std::uint64_t value);
  // A host-side write the CPU was not told about; remembered, so that a platform that
  // keeps using the old entry can be named (access_deviations.hpp).
  void foreign_write(paging::GuestPhys at, std::uint64_t value);
  [[nodiscard]] bool has_foreign_writes() const { return !foreign_old_.empty(); }
  // Guest RAM that something besides the program writes while it runs (the probe's
  // mailbox, stack and batch records): a read of it checks its translation, not its
  // value. Ranges of [begin, end).
  void set_unpredictable(std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges) {
    unpredictable_ = std::move(ranges);
  }
  // The front-end copied these bytes from the machine into the model: their values are
  // known again (whatever made them unknown).
  void learned(paging::GuestPhys at, unsigned size) { mark_unknown(at.value(), size, false); }
  // A write went to one of several places and the CPU does not say which: these bytes'
  // value is unknown until the front-end learns them again.
  void data_unknown(paging::GuestPhys at, unsigned size) { mark_unknown(at.value(), size, true); }
  // A platform's known deviation may have set `bits` in the entry at `at`: a read of the
  // entry as data may see it with or without them, until it is written again.
  void may_have_set(paging::GuestPhys at, std::uint64_t bits) {
    if ((read_entry(at) & bits) != bits)
      mark_unknown(at.value(), paging::entry_bytes(state_.mode()), true);
  }

  // What the architecture allows for `access` now (RFLAGS.AC from `ac`). The walks are
  // explained (Judgement::fresh, others) only with Explain::Yes: deciding needs no text.
  [[nodiscard]] Judgement judge(const paging::Access& access, bool ac,
                                Explain explain = Explain::Yes) const;
  // The same into `out`, whose storage is reused: a front-end that judges millions of
  // accesses and keeps few of the judgements allocates nothing per access.
  void judge(const paging::Access& access, bool ac, Explain explain, Judgement& out) const;
  // Only the fresh walk: enough to move a model forward as a CPU that walks would.
  [[nodiscard]] Judgement judge_fresh(const paging::Access& access, bool ac) const;
  // Records that the access happened with `observed` (nullptr: no CPU; the model takes
  // the fresh outcome): which allowed outcome it matched, A/D bits, the written data,
  // what may now be cached, and what a #PF invalidated.
  AccessVerdict commit(const paging::Access& access, bool ac, std::uint64_t write_value,
                       const Judgement& judgement, const Observed* observed);
  // The same into `v`, whose storage is reused (one verdict per access of a batch).
  void commit(const paging::Access& access, bool ac, std::uint64_t write_value,
              const Judgement& judgement, const Observed* observed, AccessVerdict& v);
  // Does `observed` match `allowed` (the value of a read included)?
  [[nodiscard]] bool matches(const Allowed& allowed, const paging::Access& access,
                             const Observed& observed) const;
  // Does `observed` match any outcome `judgement` allows?
  [[nodiscard]] bool allows(const Judgement& judgement, const paging::Access& access,
                            const Observed& observed) const;
  // A walk that gives `observed` on a platform that misses the host's foreign writes
  // (access_deviations.hpp), if any: each entry the host wrote since the guest last did
  // may read as its current value or any value a host write replaced (the platform may
  // have shadowed it at any of those times), each entry on its own. Bounded; nothing
  // without foreign writes. With `every`, each such walk goes there (the first is
  // returned too).
  [[nodiscard]] std::optional<paging::Walk> walk_before_foreign_writes(
      const paging::Access& access, bool ac, const Observed& observed,
      std::vector<paging::Walk>* every = nullptr) const;

  // Does `observed` match a translation that a #PF since should have invalidated (SDM
  // §4.10.4.1: a page fault invalidates the TLB entries for the faulting address's
  // page) and that nothing else has invalidated since: what a platform that keeps TLB
  // entries across a #PF answers (access_deviations.hpp).
  [[nodiscard]] bool matches_dropped_by_fault(const paging::Access& access, bool ac,
                                              const Observed& observed) const;
  // A platform known to keep such TLB entries (a named deviation) may have answered an
  // access from one even when the outcome is also the architecture's: adds what they
  // translate to `judgement` as stale alternatives, so that commit() moves the model on
  // as uncertainly as that allows (A/D bits, where a write's data went).
  void widen_with_dropped(const paging::Access& access, bool ac, Judgement& judgement) const;
  // Where such a kept TLB entry would send the access's first page: (address, bytes).
  [[nodiscard]] std::vector<std::pair<paging::GuestPhys, unsigned>> dropped_places(
      const paging::Access& access, bool ac) const;

  // What a CPU under `state` allows: its walks of the tables in memory (both pages of an
  // access that crosses one, a read's value and the values its own A/D updates may
  // show) and what the translation caches may answer under it: how a known deviation
  // that acts under another state is matched, a stale translation included.
  // `with_dropped`: and the TLB entries a #PF since should have invalidated, on a
  // platform known to keep them (deviations combine: a walk under another state filled
  // the entry, the platform kept it across a fault).
  [[nodiscard]] Judgement judge_under(const paging::Access& access, const paging::CpuState& state,
                                      bool with_dropped = false) const;
  // A known deviation did what a walk under `state` does (`under`: judge_under() of
  // that state, before anything moved): adds that walk to `judgement` as an
  // alternative, so that commit() moves the model on with what the platform did (the
  // A/D bits it may have set, where a write's data went) rather than with what the
  // architecture says. The caller still reports the access as the deviation.
  void widen_with_state(const paging::Access& access, const paging::CpuState& state,
                        Judgement under, Judgement& judgement) const;
  // ... and what such a walk translated may be cached now, under those rules (after a
  // fault: the page of an access crossing one that translated).
  void remember_under(const paging::Access& access, const paging::CpuState& state, bool faulted);

  // Could `judgement` (judge_under() of `state`) differ under the other CPU vendor's
  // rules? Only where the entry rules of the two vendors (entry_rules.hpp) treat an
  // entry its walks read apart: walks that met no such entry decide the same, cached
  // items of either vendor being among the judgement's walks.
  [[nodiscard]] static bool vendor_may_matter(const Judgement& judgement,
                                              const paging::CpuState& state);
  // Does a TLB item a #PF dropped cover the page (or second page) of `access`?
  [[nodiscard]] bool covers_dropped(const paging::Access& access) const;

  [[nodiscard]] paging::CpuState state_for(bool ac) const;
  [[nodiscard]] std::uint64_t read_entry(paging::GuestPhys at) const;

 private:
  void pae_reload_if_needed(const paging::CpuState& before);
  // Every walk a CPU may do for `access` on its page now: the fresh one first, then
  // what the translation caches remember, then (AMD PAE) the PDPTEs in memory.
  // The decisions behind page_walks(), with the explanation when asked for.
  void page_decisions(const paging::CpuState& s, const paging::Access& access, Explain explain,
                      std::vector<paging::Decision>& decisions,
                      std::vector<paging::CpuState>& rules, std::vector<paging::Walk>& walks) const;
  // judge() under `s`.
  void judge_in(const paging::CpuState& s, const paging::Access& access, Explain explain,
                Judgement& out) const;
  [[nodiscard]] std::uint64_t read_value(paging::GuestPhys pa, unsigned size, bool& known) const;
  // A success answered from one of judgement.decided_others: puts the walks that give
  // `chosen` into the TLB under the rules they were decided with.
  void fill_from_others(const paging::Access& access, const Judgement& judgement,
                        const Allowed& chosen);
  [[nodiscard]] paging::Walk explain_cached(const CachedPath& p, const paging::CpuState& s,
                                            const paging::Access& access) const;

  paging::PhysicalMemory& memory_;
  paging::FlatMemory flat_;  // memory_'s bytes when it is a BufferMemory: no virtual reads
  paging::CpuState state_;
  JudgeOptions options_;
  TranslationCache caches_;
  // Entry word (GPA) -> the distinct values host writes replaced there, oldest first.
  std::map<std::uint64_t, std::vector<std::uint64_t>> foreign_old_;
  // Bytes of guest RAM whose value the model cannot know (aligned word -> byte mask): a
  // write with more than one allowed translation (a stale one among them) went to one
  // of them, and the CPU does not say which. A read of them checks its translation only.
  std::unordered_map<std::uint64_t, std::uint8_t> unknown_bytes_;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> unpredictable_;  // set_unpredictable()
  void mark_unknown(std::uint64_t pa, unsigned size, bool unknown);
  [[nodiscard]] bool any_unknown(std::uint64_t pa, unsigned size) const;
  // TLB items a #PF invalidated, forgotten as the caches forget (INVLPG, MOV CR3, ...).
  std::vector<TranslationCache::TlbItem> dropped_by_fault_;
  void forget_dropped(bool keep_global, std::optional<paging::Linear> page = std::nullopt);
  // Calls f() with the judge's walks answered by its TLB holding again what faults
  // dropped (a copy of the caches kept in restored_, reused: copying the whole judge
  // cost an allocation per member at each access that touched such a page).
  template <class F>
  decltype(auto) with_dropped_restored(F&& f) const;
  // The caches page_decisions() asks: caches_, or restored_ inside with_dropped_restored().
  mutable const TranslationCache* answering_ = nullptr;
  mutable TranslationCache restored_;
  // Entry values replaced since the caches were last invalidated. A CPU may cache a
  // translation it never used, for prefetches and speculative accesses (SDM
  // §4.10.2.3; KVM's shadow MMU prefetches the neighbours of a faulting entry), so a
  // walk through a replaced value stays allowed for an address until an invalidation
  // that covers it: INVLPG or a #PF of its page (any INVLPG or #PF for a replaced
  // upper entry, as paging-structure caches go), MOV CR3 (global leaves survive it).
  struct Replaced {
    std::uint64_t entry = 0;  // GPA of the entry
    std::uint64_t value = 0;
    std::uint64_t at = 0;  // clock_ when it was replaced
  };
  // Few at a time (a flush forgets all but global leaves): a flat list, oldest first,
  // costs an entry write no allocation.
  std::vector<Replaced> replaced_;
  std::uint64_t clock_ = 0;  // entry writes and invalidations so far
  std::uint64_t any_page_invalidated_at_ = 0;
  // 4 KiB page -> clock_, sorted by page: a few pages between two flushes, so a list
  // that keeps its storage rather than a tree that allocates at every #PF.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> page_invalidated_at_;
  void note_replaced(std::uint64_t at, std::uint64_t old, std::uint64_t now);
  void note_invalidated(std::optional<paging::Linear> page, bool keep_global);
  [[nodiscard]] bool replaced_may_answer(const Replaced& r, unsigned level,
                                         paging::Linear va) const;
  // Scratch for judge() and page_decisions(), kept to save an allocation per access.
  mutable std::vector<const CachedPath*> candidates_;
  // The walks page_decisions() extends with replaced values: (index in its decisions,
  // the cached item it came from, or nullptr for the fresh walk).
  mutable std::vector<std::pair<std::size_t, const CachedPath*>> speculative_sources_;
  mutable bool unchanged_cached_ = false;  // set by page_decisions()
  mutable std::array<std::vector<paging::Decision>, 2> scratch_decisions_;  // per page
  mutable std::array<std::vector<paging::CpuState>, 2> scratch_rules_;
  mutable std::array<std::vector<paging::Walk>, 2> scratch_walks_;
};

}  // namespace pagelab::lab::judge

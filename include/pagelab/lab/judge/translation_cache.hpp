#pragma once
// What a CPU may still hold in its translation caches (SDM vol. 3A §4.10): the TLB
// (whole translations, per page) and the paging-structure caches (the upper entries of
// a walk, per region of the linear address space they map). Each cached item is the
// paging-structure entries its walk read, as they were then, with the control bits the
// walk depended on (EFER.NXE, CR4.PSE: SDM §4.10.4.1, changing them invalidates
// nothing). A stale outcome is a walk over those remembered entries.
//
// The model is conservative in one direction only: it forgets exactly what the
// architecture says must be forgotten, so an outcome is refused only when no CPU could
// legally show it. It holds a set per page and per region, not one item, because after
// an entry changed without invalidation a CPU may have used the old translation or
// walked the new one, and an observer cannot tell which it kept. Items are compared
// without their A/D bits, so the sets stay as small as the number of distinct
// translations: history does not grow with the number of accesses.
#include <array>
#include <cstdint>
#include <vector>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/decision.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab::judge {

// One remembered entry of a walk.
struct CachedEntry {
  std::uint64_t address = 0;  // guest-physical; for a PAE PDPTE register, its origin
  std::uint64_t value = 0;
  unsigned level = 0;
  bool operator==(const CachedEntry&) const = default;
};

// The entries one walk read from the top level down to `levels` entries, and the
// walk-deciding control bits then in force.
struct CachedPath {
  std::array<CachedEntry, 5> entries{};
  unsigned count = 0;
  std::uint64_t efer = 0, cr4 = 0;        // only Efer::Nxe and Cr4::Pse are kept
  std::array<std::uint64_t, 4> pdptes{};  // PAE: the PDPTE registers of that walk
  bool global = false;                    // a TLB item for a global page (CR4.PGE, G)
  // Walked under AMD's rules or Intel's (CpuFeatures::amd): a platform that walks with
  // the other vendor's rules (a known deviation) caches what those rules translate.
  bool amd = false;
  bool operator==(const CachedPath&) const = default;
};

class TranslationCache {
 public:
  explicit TranslationCache(paging::PagingMode mode = paging::PagingMode::Level4) : mode_(mode) {}
  void set_mode(paging::PagingMode mode);

  // Remembers what a walk for `va` may have left behind: every upper entry that was
  // present and well-formed (paging-structure caches), and the whole path when it
  // translated (TLB).
  void fill(const paging::Decision& walk, const paging::CpuState& state, paging::Linear va);
  // INVLPG / INVPCID type 0: the TLB items for the page and every paging-structure
  // cache item (SDM §4.10.4.1: "regardless of the linear addresses").
  void invalidate_page(paging::Linear va);
  // A #PF invalidates what would be used to translate the faulting address
  // (SDM §4.10.4.2): the TLB entries for its page number. A CPU may hold a page larger
  // than 4 KiB as several 4 KiB entries (SDM §4.10.2.3), and those of other 4 KiB pages
  // are not for that page number: a large page's item stays for the rest of its range.
  void invalidate_for_fault(paging::Linear va);
  // MOV CR3 (without PCID no-flush), INVPCID types 1 and 3: all but global TLB items.
  void flush_non_global();
  // CR4.PGE or CR0.PG changing, INVPCID type 2: everything.
  void flush_all();

  // The TLB items for `va`'s page (what a #PF there invalidates), with their pages.
  struct TlbItem {
    std::uint64_t base = 0, bytes = 0;
    CachedPath path;
  };
  void tlb_items(paging::Linear va, std::vector<TlbItem>& out) const;
  // Puts back an item tlb_items() returned.
  void restore(const TlbItem& item);
  // The TLB item a walk that reached its leaf leaves (what fill() keeps for its page
  // when it translated; a walk refused on the leaf's rights has the same path).
  static TlbItem tlb_item(const paging::Decision& walk, const paging::CpuState& state);
  // Every cached path that could translate `va` now, TLB items first.
  void candidates(paging::Linear va, std::vector<const CachedPath*>& out) const;
  [[nodiscard]] std::size_t size() const;

 private:
  // Items by key, in the order they came: a few dozen at most between two flushes (a
  // window of a few pages), so a flat list beats a hash map of lists, whose nodes and
  // lists were allocated again after every flush (a fuzz case starts with one).
  struct Keyed {
    std::uint64_t key = 0;
    CachedPath path;
  };
  using Items = std::vector<Keyed>;
  void insert(Items& items, std::uint64_t key, const CachedPath& path);
  static void erase(Items& items, std::uint64_t key);
  // TLB key: the page base with its size in the low bits (page bases are 4 KiB aligned).
  static std::uint64_t tlb_key(std::uint64_t base, paging::PageSize size);
  [[nodiscard]] std::uint64_t region_key(paging::Linear va, unsigned level) const;

  // The last fill() that went through, and how many invalidations had happened then.
  struct LastFill {
    std::uint64_t generation = ~std::uint64_t{0}, page = 0;
    paging::Decision::Kind kind{};
    unsigned count = 0;
    std::uint64_t efer = 0, cr4 = 0;
    bool amd = false;
    std::array<CachedEntry, 5> entries{};
    bool operator==(const LastFill&) const = default;
  };
  std::uint64_t generation_ = 0;  // invalidations so far
  LastFill last_fill_;
  // Changes of any kind so far, and the last candidates() answer under that version.
  std::uint64_t version_ = 0;
  // The pointers are into this object's buckets: a copy starts with no memo.
  struct CandidatesMemo {
    static constexpr std::uint64_t Unset = ~std::uint64_t{0};
    std::uint64_t version = Unset, page = 0;
    std::vector<const CachedPath*> items;
    CandidatesMemo() = default;
    CandidatesMemo(const CandidatesMemo& /*other*/) {}
    CandidatesMemo& operator=(const CandidatesMemo& /*other*/) {
      version = Unset;
      items.clear();
      return *this;
    }
    ~CandidatesMemo() = default;
  };
  mutable CandidatesMemo memo_;

  paging::PagingMode mode_;
  Items tlb_;
  // 4 KiB pages of a large page's item that a #PF dropped (by TLB key): the item no
  // longer translates them, until the same translation is filled again.
  struct Hole {
    std::uint64_t key = 0;
    std::uint64_t page = 0;  // the 4 KiB page base
    CachedPath path;
  };
  std::vector<Hole> holes_;
  [[nodiscard]] bool in_hole(std::uint64_t key, std::uint64_t page, const CachedPath& p) const;
  void fill_holes(std::uint64_t key, const CachedPath& p);
  Items structures_;  // by level and region
};

}  // namespace pagelab::lab::judge

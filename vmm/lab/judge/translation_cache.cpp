#include "pagelab/lab/judge/translation_cache.hpp"

#include <algorithm>
#include <variant>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_rules.hpp"

namespace pagelab::lab::judge {

using paging::Cr4;
using paging::Efer;
using paging::PageSize;
using paging::Pte;

namespace {

constexpr std::uint64_t AccessedDirty = Pte::Accessed | Pte::Dirty;
constexpr std::array<PageSize, 4> AllSizes{PageSize::Size4K, PageSize::Size2M, PageSize::Size4M,
                                           PageSize::Size1G};
constexpr unsigned LevelKeyShift = 60;
constexpr std::uint64_t bits_below_page = 0xfff;

CachedPath path_of(const paging::Decision& walk, const paging::CpuState& state, unsigned count) {
  CachedPath p;
  p.count = count;
  for (unsigned i = 0; i < count; ++i) {
    const auto& st = walk.entries[i];
    // A/D bits change nothing a walk decides: two paths that differ only there are one.
    p.entries[i] = {st.address.value(), st.value & ~AccessedDirty, st.level};
  }
  p.efer = state.efer & Efer::Nxe;
  p.cr4 = state.cr4 & Cr4::Pse;
  p.amd = state.features.amd;
  if (state.mode() == paging::PagingMode::Pae) p.pdptes = state.pdptes;
  return p;
}

}  // namespace

void TranslationCache::set_mode(paging::PagingMode mode) {
  if (mode != mode_) flush_all();
  mode_ = mode;
}

std::uint64_t TranslationCache::tlb_key(std::uint64_t base, PageSize size) {
  return base | static_cast<std::uint64_t>(size);
}

std::uint64_t TranslationCache::region_key(paging::Linear va, unsigned level) const {
  return std::uint64_t{level} << LevelKeyShift |
         va.value() >> paging::level_bits_unchecked(mode_, level).lo;
}

void TranslationCache::insert(Items& items, std::uint64_t key, const CachedPath& path) {
  if (std::none_of(items.begin(), items.end(),
                   [&](const Keyed& k) { return k.key == key && k.path == path; })) {
    items.push_back({key, path});
    ++version_;
  }
}

void TranslationCache::fill(const paging::Decision& walk, const paging::CpuState& state,
                            paging::Linear va) {
  // Upper entries that were present and well-formed may sit in the paging-structure
  // caches (SDM §4.10.3.1): every entry but the last one read (the leaf of a
  // translation or of a permission fault, or the entry that stopped the walk). PAE's
  // PDPTEs are registers, not cache items.
  if (walk.entry_count == 0) return;
  // The same walk filled again with nothing forgotten since adds nothing: skip the
  // lookups (a page accessed over and over costs one comparison).
  LastFill now{generation_,
               va.value() & ~bits_below_page,
               walk.kind,
               walk.entry_count,
               state.efer & Efer::Nxe,
               state.cr4 & Cr4::Pse,
               state.features.amd,
               {}};
  for (unsigned i = 0; i < walk.entry_count; ++i) {
    now.entries[i] = {walk.entries[i].address.value(), walk.entries[i].value & ~AccessedDirty,
                      walk.entries[i].level};
  }
  if (state.mode() != paging::PagingMode::Pae && now == last_fill_) return;
  last_fill_ = now;
  for (unsigned i = 0; i + 1 < walk.entry_count; ++i) {
    if (walk.entries[i].pdpte_register) continue;
    insert(structures_, region_key(va, walk.entries[i].level), path_of(walk, state, i + 1));
  }
  if (walk.kind != paging::Decision::Kind::Translation) return;
  auto p = path_of(walk, state, walk.entry_count);
  p.global = walk.global;
  const auto key = tlb_key(walk.page_base.value(), walk.page_size);
  fill_holes(key, p);
  insert(tlb_, key, p);
}

void TranslationCache::erase(Items& items, std::uint64_t key) {
  std::erase_if(items, [&](const Keyed& k) { return k.key == key; });
}

bool TranslationCache::in_hole(std::uint64_t key, std::uint64_t page, const CachedPath& p) const {
  return std::any_of(holes_.begin(), holes_.end(),
                     [&](const Hole& h) { return h.key == key && h.page == page && h.path == p; });
}

void TranslationCache::fill_holes(std::uint64_t key, const CachedPath& p) {
  // Filled again, the translation may be cached whole again.
  if (std::erase_if(holes_, [&](const Hole& h) { return h.key == key && h.path == p; }) != 0) {
    ++version_;
  }
}

void TranslationCache::invalidate_page(paging::Linear va) {
  ++generation_;
  ++version_;
  for (const auto size : AllSizes) {
    const auto key = tlb_key(va.value() & ~(paging::page_bytes(size) - 1), size);
    erase(tlb_, key);
    std::erase_if(holes_, [&](const Hole& h) { return h.key == key; });
  }
  structures_.clear();
}

void TranslationCache::tlb_items(paging::Linear va, std::vector<TlbItem>& out) const {
  for (const auto size : AllSizes) {
    const std::uint64_t bytes = paging::page_bytes(size);
    const std::uint64_t base = va.value() & ~(bytes - 1);
    const auto key = tlb_key(base, size);
    for (const auto& [k, p] : tlb_) {
      if (k == key && !in_hole(key, va.value() & ~bits_below_page, p)) {
        out.push_back({base, bytes, p});
      }
    }
  }
}

TranslationCache::TlbItem TranslationCache::tlb_item(const paging::Decision& walk,
                                                     const paging::CpuState& state) {
  auto p = path_of(walk, state, walk.entry_count);
  if (walk.kind == paging::Decision::Kind::Translation) {
    p.global = walk.global;
    return {walk.page_base.value(), paging::page_bytes(walk.page_size), p};
  }
  // A walk refused on the rights at its leaf translates all the same (the rights are
  // checked per access): its page is the leaf's.
  const auto& leaf = walk.entries[walk.entry_count - 1];
  const auto rules = paging::entry_rules(state, state.mode(), leaf.level, leaf.value);
  const auto bytes = paging::page_bytes(rules.page_size);
  p.global = (leaf.value & paging::Pte::Global) != 0 && (state.cr4 & Cr4::Pge) != 0;
  return {walk.address.value() & ~(bytes - 1), bytes, p};
}

void TranslationCache::restore(const TlbItem& item) {
  for (const auto size : AllSizes) {
    if (paging::page_bytes(size) != item.bytes) continue;
    fill_holes(tlb_key(item.base, size), item.path);
    insert(tlb_, tlb_key(item.base, size), item.path);
  }
}

void TranslationCache::invalidate_for_fault(paging::Linear va) {
  ++generation_;
  ++version_;
  const std::uint64_t page = va.value() & ~bits_below_page;
  for (const auto size : AllSizes) {
    const auto key = tlb_key(va.value() & ~(paging::page_bytes(size) - 1), size);
    if (size == PageSize::Size4K) {
      erase(tlb_, key);
      continue;
    }
    for (const auto& [k, p] : tlb_) {
      if (k == key && !in_hole(key, page, p)) holes_.push_back({key, page, p});
    }
  }
  for (unsigned level = 2; level <= paging::top_level(mode_); ++level) {
    erase(structures_, region_key(va, level));
  }
}

void TranslationCache::flush_non_global() {
  ++generation_;
  ++version_;
  structures_.clear();
  std::erase_if(tlb_, [](const Keyed& k) { return !k.path.global; });
  std::erase_if(holes_, [&](const Hole& h) {
    return std::none_of(tlb_.begin(), tlb_.end(), [&](const Keyed& k) { return k.key == h.key; });
  });
}

void TranslationCache::flush_all() {
  ++generation_;
  ++version_;
  tlb_.clear();
  holes_.clear();
  structures_.clear();
}

void TranslationCache::candidates(paging::Linear va, std::vector<const CachedPath*>& out) const {
  out.clear();
  if (tlb_.empty() && structures_.empty()) return;
  // The same page asked again with nothing added or forgotten since: the same items
  // (the pointers stay valid while nothing changes).
  const std::uint64_t page = va.value() >> paging::Pte::FrameShift;
  if (memo_.version == version_ && memo_.page == page) {
    out = memo_.items;
    return;
  }
  for (const auto size : AllSizes) {
    // A page size the mode has no leaf for was never filled (4 MiB only in 32-bit
    // paging, which has no 2 MiB or 1 GiB pages).
    const bool bits32 = mode_ == paging::PagingMode::Bits32;
    if ((size == PageSize::Size4M) != bits32 && size != PageSize::Size4K) continue;
    if (size == PageSize::Size1G && mode_ == paging::PagingMode::Pae) continue;
    const auto key = tlb_key(va.value() & ~(paging::page_bytes(size) - 1), size);
    for (const auto& [k, p] : tlb_) {
      if (k == key && !in_hole(key, page << paging::Pte::FrameShift, p)) out.push_back(&p);
    }
  }
  for (unsigned level = 2; level <= paging::top_level(mode_); ++level) {
    const auto key = region_key(va, level);
    for (const auto& [k, p] : structures_) {
      if (k == key) out.push_back(&p);
    }
  }
  memo_.version = version_;
  memo_.page = page;
  memo_.items = out;
}

std::size_t TranslationCache::size() const {
  return tlb_.size() + structures_.size();
}

}  // namespace pagelab::lab::judge

#include "pagelab/lab/judge/judge.hpp"

#include <algorithm>

#include "judge/cached_walk.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_rules.hpp"

namespace pagelab::lab::judge {

using paging::Cr0;
using paging::Cr3;
using paging::Cr4;
using paging::GuestPhys;
using paging::Linear;
using paging::Pte;

namespace {

constexpr std::uint32_t VectorGp = 13, VectorPf = 14;
constexpr unsigned PdpteCount = 4;
constexpr unsigned MaxReadBytes = 8;
constexpr std::uint64_t Page = 4096;
// Values replaced by host writes remembered per entry, and walks made over them to
// recognise a platform that misses those writes: few, as a fuzzer runs this per case.
constexpr std::size_t MaxForeignOld = 4;
constexpr unsigned MaxForeignWalks = 32;

std::uint64_t size_mask(unsigned size) {
  return size >= MaxReadBytes ? ~std::uint64_t{0} : paging::bit(8 * size) - 1;
}

// Two outcomes a CPU cannot tell apart: the same fault, or a translation to the same
// place with the same rights (the entries' A/D bits behind it do not matter).
bool same_outcome(const paging::Outcome& a, const paging::Outcome& b) {
  const auto* ta = std::get_if<paging::Translation>(&a);
  const auto* tb = std::get_if<paging::Translation>(&b);
  if (ta == nullptr || tb == nullptr) return a == b;
  return ta->physical == tb->physical && ta->page_size == tb->page_size &&
         ta->writable == tb->writable && ta->user == tb->user && ta->executable == tb->executable &&
         ta->protection_key == tb->protection_key;
}

// `value` (bytes read from `pa` onward, placed from byte `shift` of `value`, `count` of
// them) with the A/D bits of `updates` set where their entries overlap those bytes.
std::uint64_t with_ad_updates(std::uint64_t value, std::uint64_t pa, unsigned count, unsigned shift,
                              const paging::AdUpdates& updates, unsigned entry_width) {
  for (const auto& [entry, bits] : updates) {
    // Most reads are of data, not of the entries their own walk used.
    if (entry.value() + entry_width <= pa || entry.value() >= pa + count) continue;
    for (unsigned i = 0; i < entry_width; ++i) {
      const std::uint64_t at = entry.value() + i;
      if (at < pa || at >= pa + count) continue;
      const auto byte = static_cast<unsigned>(at - pa) + shift;
      value |= ((bits >> (8 * i)) & 0xff) << (8 * byte);
    }
  }
  return value;
}

// Records `v` as a value the read may return after its own A/D updates, once.
void add_value_after_ad(Allowed& a, std::uint64_t v) {
  if (v == a.value) return;
  const auto* end = a.values_after_ad.begin() + a.values_after_ad_count;
  if (std::find(a.values_after_ad.cbegin(), end, v) != end) return;
  if (a.values_after_ad_count < a.values_after_ad.size()) {
    a.values_after_ad[a.values_after_ad_count++] = v;
  }
}

}  // namespace

std::uint64_t read_bytes(const paging::PhysicalMemory& memory, GuestPhys pa, unsigned size) {
  // Within one aligned word (most accesses): one read.
  if ((pa.value() & 7) + size <= sizeof(std::uint64_t)) {
    const std::uint64_t word = memory.read64(GuestPhys(pa.value() & ~std::uint64_t{7}));
    return (word >> ((pa.value() & 7) * 8)) & size_mask(size);
  }
  std::uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    const std::uint64_t a = pa.value() + i;
    const std::uint64_t word = memory.read64(GuestPhys(a & ~std::uint64_t{7}));
    value |= ((word >> ((a & 7) * 8)) & 0xff) << (i * 8);
  }
  return value;
}

void write_bytes(paging::PhysicalMemory& memory, GuestPhys pa, unsigned size, std::uint64_t value) {
  if ((pa.value() & 7) + size <= sizeof(std::uint64_t)) {
    const GuestPhys word_at(pa.value() & ~std::uint64_t{7});
    const auto shift = static_cast<unsigned>((pa.value() & 7) * 8);
    const std::uint64_t mask = size_mask(size) << shift;
    memory.write64(word_at, (memory.read64(word_at) & ~mask) | ((value << shift) & mask));
    return;
  }
  for (unsigned i = 0; i < size; ++i) {
    const std::uint64_t a = pa.value() + i;
    const GuestPhys word_at(a & ~std::uint64_t{7});
    const unsigned shift = static_cast<unsigned>((a & 7) * 8);
    std::uint64_t word = memory.read64(word_at);
    word = (word & ~(std::uint64_t{0xff} << shift)) | (((value >> (i * 8)) & 0xff) << shift);
    memory.write64(word_at, word);
  }
}

Judge::Judge(paging::PhysicalMemory& memory, const paging::CpuState& state, JudgeOptions options)
    : memory_(memory), state_(state), options_(options), caches_(state.mode()) {
  if (auto* buffer = dynamic_cast<paging::BufferMemory*>(&memory)) {
    flat_ = {buffer->bytes().data(), buffer->bytes().size()};
  }
}

void Judge::reset(const paging::CpuState& state) {
  state_ = state;
  caches_.set_mode(state.mode());
  caches_.flush_all();
  replaced_.clear();
  page_invalidated_at_.clear();
  foreign_old_.clear();
  dropped_by_fault_.clear();
  unknown_bytes_.clear();
}

void Judge::forget_dropped(bool keep_global, std::optional<Linear> page) {
  std::erase_if(dropped_by_fault_, [&](const TranslationCache::TlbItem& d) {
    if (page) return page->value() - d.base < d.bytes;
    return !(keep_global && d.path.global);
  });
}

paging::CpuState Judge::state_for(bool ac) const {
  auto s = state_;
  s.rflags = (s.rflags & ~paging::Rflags::Ac) | (ac ? paging::Rflags::Ac : 0);
  return s;
}

std::uint64_t Judge::read_entry(GuestPhys at) const {
  const unsigned bytes = paging::entry_bytes(state_.mode());
  if (flat_.base != nullptr) return flat_.read(at, bytes);
  return bytes == sizeof(std::uint32_t) ? memory_.read32(at) : memory_.read64(at);
}

void Judge::write_entry(GuestPhys at, std::uint64_t value) {
  note_replaced(at.value(), read_entry(at), value);
  if (paging::entry_bytes(state_.mode()) == sizeof(std::uint32_t)) {
    memory_.write32(at, static_cast<std::uint32_t>(value));
  } else {
    memory_.write64(at, value);
  }
  mark_unknown(at.value(), paging::entry_bytes(state_.mode()), false);
  // The guest's own store makes the entry what the CPU sees, foreign or not before.
  foreign_old_.erase(at.value() - at.value() % sizeof(std::uint64_t));
}

void Judge::foreign_write(GuestPhys at, std::uint64_t value) {
  const auto old = memory_.read64(at);
  if (paging::entry_bytes(state_.mode()) == sizeof(std::uint32_t)) {
    note_replaced(at.value(), old & 0xffff'ffffU, value & 0xffff'ffffU);
    note_replaced(at.value() + 4, old >> 32, value >> 32);
  } else {
    note_replaced(at.value(), old, value);
  }
  // Every value replaced may still be shadowed, not just the first (a platform may have
  // walked an intermediate host value). Bounded: the first and the latest few.
  auto& olds = foreign_old_[at.value()];
  if (std::find(olds.begin(), olds.end(), old) == olds.end()) {
    olds.push_back(old);
    if (olds.size() > MaxForeignOld) olds.erase(olds.begin() + 1);
  }
  mark_unknown(at.value(), sizeof(std::uint64_t), false);
  memory_.write64(at, value);
}

namespace {

// The first item of a list of (page, ...) sorted by page whose page is `base` or above.
template <typename List>
auto first_page_from(List& list, std::uint64_t base) {
  return std::lower_bound(list.begin(), list.end(), base,
                          [](const auto& item, std::uint64_t page) { return item.first < page; });
}

}  // namespace

void Judge::note_replaced(std::uint64_t at, std::uint64_t old, std::uint64_t now) {
  if ((old & Pte::Present) == 0 || old == now) return;
  // Bounded: a value replaced again and again is remembered once, with its last time.
  std::erase_if(replaced_, [&](const Replaced& r) { return r.entry == at && r.value == old; });
  replaced_.push_back({at, old, ++clock_});
}

void Judge::note_invalidated(std::optional<Linear> page, bool keep_global) {
  ++clock_;
  if (page) {
    const std::uint64_t base = page->value() & ~(Page - 1);
    const auto it = first_page_from(page_invalidated_at_, base);
    if (it != page_invalidated_at_.end() && it->first == base) {
      it->second = clock_;
    } else {
      page_invalidated_at_.insert(it, {base, clock_});
    }
    any_page_invalidated_at_ = clock_;
    return;
  }
  page_invalidated_at_.clear();
  // What stays cached over a flush is a global leaf (CR4.PGE, G): the rest is gone.
  const bool pge = (state_.cr4 & Cr4::Pge) != 0;
  std::erase_if(replaced_, [&](const Replaced& r) {
    return !keep_global || !pge || (r.value & Pte::Global) == 0;
  });
}

bool Judge::replaced_may_answer(const Replaced& r, unsigned level, Linear va) const {
  const auto rules = paging::entry_rules(state_, state_.mode(), level, r.value);
  if (!rules.leaf) return r.at > any_page_invalidated_at_;
  // A TLB item of the old leaf's page: gone after an INVLPG or #PF anywhere in it.
  const auto bytes = paging::page_bytes(rules.page_size);
  const auto base = va.value() & ~(bytes - 1);
  for (auto it = first_page_from(page_invalidated_at_, base);
       it != page_invalidated_at_.end() && it->first < base + bytes; ++it) {
    if (it->second > r.at) return false;
  }
  return true;
}

std::array<std::uint64_t, 4> Judge::pdptes_in_memory(const paging::CpuState& state) const {
  const PdptesUnaccessed unaccessed(memory_, state.root());
  const paging::PhysicalMemory& m = options_.pdpte_accessed_ignored
                                        ? static_cast<const paging::PhysicalMemory&>(unaccessed)
                                        : memory_;
  std::array<std::uint64_t, 4> out{};
  for (unsigned i = 0; i < PdpteCount; ++i)
    out[i] = m.read64(state.root() + i * sizeof(std::uint64_t));
  return out;
}

std::optional<paging::GeneralProtection> Judge::load_pdptes(paging::CpuState& state) const {
  if (!options_.pdpte_accessed_ignored) return paging::load_pdptes(memory_, state);
  return paging::load_pdptes(PdptesUnaccessed(memory_, state.root()), state);
}

void Judge::write_cr3_walked(std::uint64_t value) {
  note_invalidated(std::nullopt, true);
  caches_.flush_non_global();
  forget_dropped(true);
  state_.cr3 = value & ~Cr3::NoFlush;
  state_.pdptes = pdptes_in_memory(state_);
}

std::optional<paging::GeneralProtection> Judge::write_cr3(std::uint64_t value) {
  auto next = state_;
  next.cr3 = value & ~Cr3::NoFlush;
  if (next.mode() == paging::PagingMode::Pae) {
    if (auto gp = load_pdptes(next)) return gp;
  }
  // With CR4.PCIDE and bit 63 set, MOV CR3 keeps the TLB (SDM §4.10.4.1).
  if ((state_.cr4 & Cr4::Pcide) == 0 || (value & Cr3::NoFlush) == 0) {
    note_invalidated(std::nullopt, true);
    caches_.flush_non_global();
    forget_dropped(true);
  }
  state_ = next;
  return std::nullopt;
}

void Judge::pae_reload_if_needed(const paging::CpuState& before) {
  // SDM §4.4.1: with PAE paging in use afterwards, MOV to CR0 or CR4 that changes CD,
  // NW, PG, PAE, PGE, PSE or SMEP loads the PDPTE registers from CR3.
  const bool reloads =
      ((before.cr0 ^ state_.cr0) & (Cr0::Cd | Cr0::Nw | Cr0::Pg)) != 0 ||
      ((before.cr4 ^ state_.cr4) & (Cr4::Pae | Cr4::Pge | Cr4::Pse | Cr4::Smep)) != 0;
  if (state_.mode() == paging::PagingMode::Pae && reloads) load_pdptes(state_);
}

void Judge::write_cr0(std::uint64_t value) {
  const auto before = state_;
  if (((state_.cr0 ^ value) & Cr0::Pg) != 0) {
    note_invalidated(std::nullopt, false);
    caches_.flush_all();
    forget_dropped(false);
  }
  state_.cr0 = value;
  caches_.set_mode(state_.mode());
  pae_reload_if_needed(before);
}

void Judge::write_cr4(std::uint64_t value) {
  const auto before = state_;
  if (((state_.cr4 ^ value) & Cr4::Pge) != 0) {
    note_invalidated(std::nullopt, false);
    caches_.flush_all();
    forget_dropped(false);
  }
  state_.cr4 = value;
  caches_.set_mode(state_.mode());
  pae_reload_if_needed(before);
}

void Judge::write_efer(std::uint64_t value) {
  state_.efer = value;
  caches_.set_mode(state_.mode());
}

void Judge::write_pkru(std::uint32_t value) {
  state_.pkru = value;
}

void Judge::invlpg(Linear va) {
  note_invalidated(va, true);
  caches_.invalidate_page(va);
  forget_dropped(false, va);
}

void Judge::invpcid(unsigned type, Linear va) {
  // Types: 0 individual address, 1 single context, 2 all contexts with globals,
  // 3 all contexts without globals (SDM vol. 2A, INVPCID). Without PCIDs in use every
  // translation is PCID 0's.
  if (type == 0) {
    note_invalidated(va, true);
    caches_.invalidate_page(va);
    forget_dropped(false, va);
  } else if (type == 2) {
    note_invalidated(std::nullopt, false);
    caches_.flush_all();
    forget_dropped(false);
  } else {
    note_invalidated(std::nullopt, true);
    caches_.flush_non_global();
    forget_dropped(true);
  }
}

void Judge::toggle_pge() {
  note_invalidated(std::nullopt, false);
  caches_.flush_all();
  forget_dropped(false);
}

namespace {

// The bytes of [pa, pa + size) in each 8-byte word: f(word, byte mask).
template <typename F>
void for_each_word(std::uint64_t pa, unsigned size, F&& f) {
  constexpr std::uint64_t Word = sizeof(std::uint64_t);
  for (std::uint64_t a = pa; a < pa + size;) {
    const std::uint64_t word = a - a % Word;
    const std::uint64_t end = std::min<std::uint64_t>(pa + size, word + Word);
    const auto mask = static_cast<std::uint8_t>(((1U << (end - a)) - 1U) << (a - word));
    if (f(word, mask)) return;
    a = end;
  }
}

}  // namespace

void Judge::mark_unknown(std::uint64_t pa, unsigned size, bool unknown) {
  if (!unknown && unknown_bytes_.empty()) return;
  for_each_word(pa, size, [&](std::uint64_t word, std::uint8_t mask) {
    if (unknown) {
      unknown_bytes_[word] |= mask;
    } else if (auto it = unknown_bytes_.find(word); it != unknown_bytes_.end()) {
      it->second = static_cast<std::uint8_t>(it->second & ~mask);
      if (it->second == 0) unknown_bytes_.erase(it);
    }
    return false;
  });
}

bool Judge::any_unknown(std::uint64_t pa, unsigned size) const {
  if (unknown_bytes_.empty()) return false;
  bool any = false;
  for_each_word(pa, size, [&](std::uint64_t word, std::uint8_t mask) {
    const auto it = unknown_bytes_.find(word);
    any = it != unknown_bytes_.end() && (it->second & mask) != 0;
    return any;
  });
  return any;
}

std::uint64_t Judge::read_value(GuestPhys pa, unsigned size, bool& known) const {
  const auto at = pa.value();
  known = at + size <= memory_.size() && !any_unknown(at, size) &&
          std::none_of(unpredictable_.begin(), unpredictable_.end(),
                       [&](const auto& r) { return at < r.second && r.first < at + size; });
  return known ? read_bytes(memory_, pa, size) : 0;
}

namespace {

// Guest memory for the decision walk: the flat bytes when there are some, else the
// PhysicalMemory's virtual reads.
struct BaseView {
  const paging::FlatMemory& flat;
  const paging::PhysicalMemory& memory;
  [[nodiscard]] std::uint64_t read(GuestPhys at, unsigned bytes) const {
    if (flat.base != nullptr) return flat.read(at, bytes);
    return bytes == sizeof(std::uint32_t) ? memory.read32(at) : memory.read64(at);
  }
};

// Memory as a cache item answers: its remembered entries over the tables now, and
// without XD bits once the item was filled under EFER.NXE=1 and NXE is 0 now (the
// cached rights no longer forbid fetches; walk_cached() explains the same).
struct CachedView {
  BaseView base;
  const CachedPath& path;
  bool strip_xd;
  [[nodiscard]] std::uint64_t read(GuestPhys at, unsigned bytes) const {
    std::uint64_t v = 0;
    bool found = false;
    for (unsigned i = 0; i < path.count; ++i) {
      const auto& e = path.entries[i];
      if (e.address == at.value()) {
        v = e.value;
        found = true;
        break;
      }
    }
    if (!found) v = base.read(at, bytes);
    return strip_xd ? v & ~Pte::NoExecute : v;
  }
};

// What a cached path answers now: its entries, with the PDPTEs and the control bits
// its walk decided from frozen in it (SDM §4.10.2.2).
// The state a cached path is walked under now: its frozen rules, the rest as they are.
paging::CpuState rules_of(const CachedPath& p, const paging::CpuState& s) {
  auto cs = s;
  if (s.mode() == paging::PagingMode::Pae) cs.pdptes = p.pdptes;
  cs.efer = (s.efer & ~paging::Efer::Nxe) | p.efer;
  cs.cr4 = (s.cr4 & ~Cr4::Pse) | p.cr4;
  cs.features.amd = p.amd;
  return cs;
}

paging::Decision decide_cached(const BaseView& base, const CachedPath& p, const paging::CpuState& s,
                               const paging::Access& access) {
  const bool strip_xd = p.efer != 0 && (s.efer & paging::Efer::Nxe) == 0;
  return paging::decide(CachedView{base, p, strip_xd}, rules_of(p, s), access);
}

}  // namespace

// The walk of a cached path in words, with the rules frozen in it.
paging::Walk Judge::explain_cached(const CachedPath& p, const paging::CpuState& s,
                                   const paging::Access& access) const {
  const bool pae = s.mode() == paging::PagingMode::Pae;
  std::map<std::uint64_t, std::uint64_t> remembered;
  for (unsigned i = 0; i < p.count; ++i) {
    if (pae && p.entries[i].level == 3) continue;  // a register: p.pdptes
    remembered[p.entries[i].address] = p.entries[i].value;
  }
  auto ws = s;
  if (pae) ws.pdptes = p.pdptes;
  ws.features.amd = p.amd;
  const OverlayMemory view(memory_, remembered, paging::entry_bytes(s.mode()));
  return walk_cached(view, ws, p.efer, p.cr4, access);
}

void Judge::page_decisions(const paging::CpuState& s, const paging::Access& access, Explain explain,
                           std::vector<paging::Decision>& decisions,
                           std::vector<paging::CpuState>& rules,
                           std::vector<paging::Walk>& walks) const {
  const BaseView base{flat_, memory_};
  decisions.push_back(paging::decide(base, s, access));
  rules.push_back(s);
  if (explain == Explain::Yes) walks.push_back(paging::walk(memory_, s, access));
  // What the translation caches may still answer (SDM §4.10.2–4.10.3).
  auto& cached = candidates_;  // reused: no allocation per access
  (answering_ != nullptr ? *answering_ : caches_).candidates(access.address, cached);
  speculative_sources_.clear();
  if (!replaced_.empty()) speculative_sources_.emplace_back(0, nullptr);
  const bool pae = s.mode() == paging::PagingMode::Pae;
  for (const auto* p : cached) {
    // An item whose entries all still hold what it remembers (A/D aside), walked under
    // the same NXE/PSE, answers exactly as the fresh walk: nothing to add.
    const bool unchanged =
        p->efer == (s.efer & paging::Efer::Nxe) && p->cr4 == (s.cr4 & Cr4::Pse) &&
        p->amd == s.features.amd && (!pae || p->pdptes == s.pdptes) &&
        std::all_of(p->entries.begin(), p->entries.begin() + p->count, [&](const CachedEntry& e) {
          if (pae && e.level == 3) return true;
          return (read_entry(GuestPhys(e.address)) & ~(Pte::Accessed | Pte::Dirty)) == e.value;
        });
    if (unchanged) {
      unchanged_cached_ = true;
      continue;
    }
    if (!replaced_.empty()) speculative_sources_.emplace_back(decisions.size(), p);
    decisions.push_back(decide_cached(base, *p, s, access));
    rules.push_back(rules_of(*p, s));
    if (explain == Explain::Yes) walks.push_back(explain_cached(*p, s, access));
  }
  // Translations cached speculatively through an entry value replaced since (see
  // replaced_): the path of the fresh walk, or of a cached item, up to that entry, with
  // the old value there, under the rules that walk had.
  for (const auto& [index, from] : speculative_sources_) {
    const auto fresh = decisions[index];
    for (unsigned i = 0; i < fresh.entry_count; ++i) {
      const auto& e = fresh.entries[i];
      if (e.pdpte_register) continue;
      for (const auto& r : replaced_) {
        if (r.entry != e.address.value() || !replaced_may_answer(r, e.level, access.address)) {
          continue;
        }
        CachedPath p;
        p.count = i + 1;
        for (unsigned k = 0; k <= i; ++k) {
          const auto& x = fresh.entries[k];
          p.entries[k] = {x.address.value(), k == i ? r.value : x.value, x.level};
        }
        p.efer = from != nullptr ? from->efer : s.efer & paging::Efer::Nxe;
        p.cr4 = from != nullptr ? from->cr4 : s.cr4 & Cr4::Pse;
        p.amd = from != nullptr ? from->amd : s.features.amd;
        if (pae) p.pdptes = from != nullptr ? from->pdptes : s.pdptes;
        decisions.push_back(decide_cached(base, p, s, access));
        rules.push_back(rules_of(p, s));
        if (explain == Explain::Yes) walks.push_back(explain_cached(p, s, access));
      }
    }
  }
  // AMD, legacy PAE: a walk may read the PDPTEs in memory rather than the registers.
  if (pae && options_.pdpt_walked) {
    auto ms = s;
    ms.pdptes = pdptes_in_memory(s);
    if (ms.pdptes != s.pdptes) {
      decisions.push_back(paging::decide(base, ms, access));
      rules.push_back(ms);
      if (explain == Explain::Yes) walks.push_back(paging::walk(memory_, ms, access));
    }
  }
}

Judgement Judge::judge(const paging::Access& access, bool ac, Explain explain) const {
  Judgement j;
  judge(access, ac, explain, j);
  return j;
}

void Judge::judge(const paging::Access& access, bool ac, Explain explain, Judgement& j) const {
  judge_in(state_for(ac), access, explain, j);
}

template <class F>
decltype(auto) Judge::with_dropped_restored(F&& f) const {
  restored_ = caches_;
  for (const auto& d : dropped_by_fault_) restored_.restore(d);
  struct Back {
    const TranslationCache*& answering;
    ~Back() { answering = nullptr; }
  } back{answering_};
  answering_ = &restored_;
  return f();
}

bool Judge::vendor_may_matter(const Judgement& judgement, const paging::CpuState& state) {
  auto other = state;
  other.features.amd = !other.features.amd;
  const auto mode = state.mode();
  const auto apart = [&](const paging::Decision& d) {
    for (unsigned i = 0; i < d.entry_count; ++i) {
      const auto& e = d.entries[i];
      const auto x = paging::entry_rules(state, mode, e.level, e.value);
      const auto y = paging::entry_rules(other, mode, e.level, e.value);
      if ((e.value & x.reserved_bits) != (e.value & y.reserved_bits) || x.present != y.present ||
          x.leaf != y.leaf || x.address != y.address || x.page_size != y.page_size ||
          x.protection_key != y.protection_key) {
        return true;
      }
    }
    return false;
  };
  return apart(judgement.decided) ||
         (judgement.decided_second && apart(*judgement.decided_second)) ||
         std::any_of(judgement.decided_others.begin(), judgement.decided_others.end(), apart);
}

Judgement Judge::judge_under(const paging::Access& access, const paging::CpuState& state,
                             bool with_dropped) const {
  Judgement j;
  if (with_dropped && covers_dropped(access)) {
    with_dropped_restored([&] { judge_in(state, access, Explain::No, j); });
  } else {
    judge_in(state, access, Explain::No, j);
  }
  return j;
}

void Judge::judge_in(const paging::CpuState& s, const paging::Access& access, Explain explain,
                     Judgement& j) const {
  j.allowed.clear();
  j.decided = {};
  j.decided_second.reset();
  j.decided_others.clear();
  j.others_under.clear();
  j.cache_may_answer = false;
  if (j.explained) {
    j.fresh = {};
    j.others.clear();
    j.fresh_second.reset();
  }
  j.explained = explain == Explain::Yes;
  auto add = [&](Allowed a, bool stale) {
    // An access that crosses a page is the same only with the same second page too (a
    // stale translation of the second page alone is another outcome).
    if (std::any_of(j.allowed.begin(), j.allowed.end(), [&](const Allowed& x) {
          return same_outcome(x.outcome, a.outcome) && x.split_at == a.split_at &&
                 x.second_physical == a.second_physical;
        })) {
      return false;
    }
    a.stale = stale;
    j.allowed.push_back(std::move(a));
    return true;
  };
  const bool data = access.type != paging::AccessType::Fetch;
  const auto offset = access.address.value() % Page;
  // Scratch reused across accesses: no allocation per access once warm.
  auto& firsts = scratch_decisions_[0];
  auto& first_rules = scratch_rules_[0];
  auto& first_walks = scratch_walks_[0];
  firsts.clear();
  first_rules.clear();
  first_walks.clear();
  unchanged_cached_ = false;
  page_decisions(s, access, explain, firsts, first_rules, first_walks);
  j.cache_may_answer = unchanged_cached_;
  j.decided = firsts.front();
  if (explain == Explain::Yes) {
    j.fresh = first_walks.front();
    j.others.assign(first_walks.begin() + 1, first_walks.end());
  }
  if (firsts.size() > 1) j.decided_others.assign(firsts.begin() + 1, firsts.end());
  const Linear page(access.address.value() - offset);
  for (std::size_t k = 1; k < first_rules.size(); ++k)
    j.others_under.push_back({page, first_rules[k]});
  if (!data || offset + access.size <= Page) {
    j.allowed.reserve(firsts.size());
    for (std::size_t k = 0; k < firsts.size(); ++k) {
      Allowed a(paging::to_outcome(firsts[k]), k > 0);
      if (firsts[k].kind == paging::Decision::Kind::Translation &&
          access.type == paging::AccessType::Read) {
        a.value = read_value(firsts[k].physical, access.size, a.value_known);
        const auto& t = std::get<paging::Translation>(a.outcome);
        add_value_after_ad(a, with_ad_updates(a.value, firsts[k].physical.value(), access.size, 0,
                                              t.ad_updates, paging::entry_bytes(s.mode())));
      }
      add(std::move(a), k > 0);
    }
    return;
  }
  // The access crosses into the next page: both pages are translated and checked; it
  // succeeds only when both do, and the fault reported (CR2 at the faulting page's
  // first byte for the second page) may be either page's when both fault: the order
  // is the implementation's (SDM §4.7).
  auto second = access;
  second.address = Linear(access.address.value() - offset + Page);
  const auto first_bytes = static_cast<unsigned>(Page - offset);
  second.size = access.size - first_bytes;
  auto& seconds = scratch_decisions_[1];
  auto& second_rules = scratch_rules_[1];
  auto& second_walks = scratch_walks_[1];
  seconds.clear();
  second_rules.clear();
  second_walks.clear();
  page_decisions(s, second, explain, seconds, second_rules, second_walks);
  j.cache_may_answer = j.cache_may_answer || unchanged_cached_;
  j.decided_second = seconds.front();
  j.decided_others.insert(j.decided_others.end(), seconds.begin() + 1, seconds.end());
  for (std::size_t k = 1; k < second_rules.size(); ++k) {
    j.others_under.push_back({second.address, second_rules[k]});
  }
  if (explain == Explain::Yes) {
    j.fresh_second = second_walks.front();
    j.others.insert(j.others.end(), second_walks.begin(), second_walks.end());
  }
  using Kind = paging::Decision::Kind;
  for (std::size_t k1 = 0; k1 < firsts.size(); ++k1) {
    for (std::size_t k2 = 0; k2 < seconds.size(); ++k2) {
      const bool stale = k1 > 0 || k2 > 0;
      const auto& d1 = firsts[k1];
      const auto& d2 = seconds[k2];
      const bool ok1 = d1.kind == Kind::Translation, ok2 = d2.kind == Kind::Translation;
      // A fault on one page: the other page's translation may have been used already,
      // so its A (and, for a write, D) bits may be set.
      auto fault_of = [](const paging::Decision& d, const paging::Decision& other, bool other_ok) {
        auto o = paging::to_outcome(d);
        if (auto* pf = std::get_if<paging::PageFault>(&o); pf != nullptr && other_ok) {
          const auto t = std::get<paging::Translation>(paging::to_outcome(other));
          pf->may_set_accessed.insert(pf->may_set_accessed.end(), t.ad_updates.begin(),
                                      t.ad_updates.end());
        }
        return o;
      };
      if (!ok1) add(Allowed(fault_of(d1, d2, ok2), stale), stale);
      if (!ok2) add(Allowed(fault_of(d2, d1, ok1), stale), stale);
      if (!ok1 || !ok2) continue;
      auto both = std::get<paging::Translation>(paging::to_outcome(d1));
      const auto t2 = std::get<paging::Translation>(paging::to_outcome(d2));
      both.ad_updates.insert(both.ad_updates.end(), t2.ad_updates.begin(), t2.ad_updates.end());
      Allowed a(both, stale);
      a.split_at = first_bytes;
      a.second_physical = d2.physical;
      if (access.type == paging::AccessType::Read) {
        bool known2 = true;
        a.value = read_value(d1.physical, first_bytes, a.value_known) |
                  read_value(d2.physical, second.size, known2) << (8 * first_bytes);
        a.value_known = a.value_known && known2;
        // Either page's walk may have set its A/D bits before the bytes were read.
        const unsigned width = paging::entry_bytes(s.mode());
        const auto both_pages = [&](std::uint64_t v, const paging::AdUpdates& u) {
          v = with_ad_updates(v, d1.physical.value(), first_bytes, 0, u, width);
          return with_ad_updates(v, d2.physical.value(), second.size, first_bytes, u, width);
        };
        const auto t1 = std::get<paging::Translation>(paging::to_outcome(d1));
        const auto& u1 = t1.ad_updates;
        add_value_after_ad(a, both_pages(a.value, u1));
        add_value_after_ad(a, both_pages(a.value, t2.ad_updates));
        add_value_after_ad(a, both_pages(both_pages(a.value, u1), t2.ad_updates));
      }
      add(std::move(a), stale);
    }
  }
  // The fresh outcome first, as for any access.
  const auto fresh =
      std::find_if(j.allowed.begin(), j.allowed.end(), [](const Allowed& a) { return !a.stale; });
  if (fresh != j.allowed.end() && fresh != j.allowed.begin()) {
    std::rotate(j.allowed.begin(), fresh, fresh + 1);
  }
}

Judgement Judge::judge_fresh(const paging::Access& access, bool ac) const {
  Judgement j;
  j.decided = paging::decide(BaseView{flat_, memory_}, state_for(ac), access);
  Allowed a(paging::to_outcome(j.decided), false);
  if (j.decided.kind == paging::Decision::Kind::Translation &&
      access.type == paging::AccessType::Read) {
    a.value = read_value(j.decided.physical, access.size, a.value_known);
    add_value_after_ad(a, with_ad_updates(a.value, j.decided.physical.value(), access.size, 0,
                                          std::get<paging::Translation>(a.outcome).ad_updates,
                                          paging::entry_bytes(state_.mode())));
  }
  j.allowed.push_back(a);
  return j;
}

bool Judge::matches(const Allowed& allowed, const paging::Access& access,
                    const Observed& ob) const {
  if (const auto* t = std::get_if<paging::Translation>(&allowed.outcome)) {
    if (ob.kind != Observed::Kind::Ok) return false;
    if (access.type != paging::AccessType::Read) return true;
    // No RAM there (e.g. a PSE-36 page above 4 GiB): what such a read returns is the
    // platform's choice, not the architecture's; the translation succeeding is checked.
    if (!allowed.value_known) return true;
    (void)t;
    const std::uint64_t got = ob.value & size_mask(access.size);
    if (got == allowed.value) return true;
    const auto* end = allowed.values_after_ad.begin() + allowed.values_after_ad_count;
    return std::find(allowed.values_after_ad.begin(), end, got) != end;
  }
  if (ob.kind != Observed::Kind::Fault) return false;
  if (const auto* pf = std::get_if<paging::PageFault>(&allowed.outcome)) {
    return ob.vector == VectorPf && ob.error_code == pf->error_code && ob.cr2 == pf->cr2.value();
  }
  const auto& gp = std::get<paging::GeneralProtection>(allowed.outcome);
  return ob.vector == VectorGp && ob.error_code == gp.error_code;
}

std::optional<paging::Walk> Judge::walk_before_foreign_writes(
    const paging::Access& access, bool ac, const Observed& observed,
    std::vector<paging::Walk>* every) const {
  if (foreign_old_.empty()) return std::nullopt;
  std::optional<paging::Walk> first;
  const unsigned width = paging::entry_bytes(state_.mode());
  const auto s = state_for(ac);
  // Entry address -> the value a walk reads there, for the host-written entries decided
  // so far. Depth first, oldest values first: the first walk is the one over the tables
  // before all host writes. Only entries a walk reads branch, so few walks are made.
  using Chosen = std::map<std::uint64_t, std::uint64_t>;
  std::vector<Chosen> pending(1);
  for (unsigned walks = 0; !pending.empty() && walks < MaxForeignWalks; ++walks) {
    const Chosen chosen = std::move(pending.back());
    pending.pop_back();
    const OverlayMemory view(memory_, chosen, width);
    const auto d = paging::decide(view, s, access);
    // The first entry read that the host wrote and whose value is not chosen yet.
    const paging::DecidedEntry* open = nullptr;
    const std::vector<std::uint64_t>* olds = nullptr;
    for (unsigned i = 0; i < d.entry_count && open == nullptr; ++i) {
      const auto& e = d.entries[i];
      // A PAE PDPTE comes from its register, loaded before any of these writes.
      if (e.pdpte_register || chosen.contains(e.address.value())) continue;
      const auto it = foreign_old_.find(e.address.value() & ~std::uint64_t{7});
      if (it != foreign_old_.end()) {
        open = &e;
        olds = &it->second;
      }
    }
    if (open == nullptr) {
      Allowed a(paging::to_outcome(d), false);
      if (d.kind == paging::Decision::Kind::Translation &&
          access.type == paging::AccessType::Read) {
        a.value_known = d.physical.value() + access.size <= memory_.size();
        if (a.value_known) a.value = read_bytes(memory_, d.physical, access.size);
      }
      if (!matches(a, access, observed)) continue;
      auto w = paging::walk(view, s, access);
      if (every == nullptr) return w;
      if (!first) first = w;
      every->push_back(std::move(w));
      continue;
    }
    // One branch per value the entry may read as: pushed newest first, popped oldest first.
    const auto at = open->address.value();
    const auto value_of = [&](std::uint64_t word) {
      return width == sizeof(std::uint32_t) ? (word >> (8 * (at & 4))) & 0xffff'ffffU : word;
    };
    const auto branch = [&](std::uint64_t value) {
      pending.push_back(chosen);
      pending.back()[at] = value;
    };
    branch(open->value);
    for (auto v = olds->rbegin(); v != olds->rend(); ++v) {
      const auto value = value_of(*v);
      // The two halves of distinct words may repeat (32-bit entries).
      const bool seen = value == open->value || std::any_of(v + 1, olds->rend(), [&](auto w) {
                          return value_of(w) == value;
                        });
      if (!seen) branch(value);
    }
  }
  return first;
}

bool Judge::covers_dropped(const paging::Access& access) const {
  const std::uint64_t first = access.address.value();
  const std::uint64_t last = first + (access.size == 0 ? 0 : access.size - 1);
  return std::any_of(dropped_by_fault_.begin(), dropped_by_fault_.end(),
                     [&](const TranslationCache::TlbItem& d) {
                       return first - d.base < d.bytes || last - d.base < d.bytes;
                     });
}

void Judge::widen_with_dropped(const paging::Access& access, bool ac, Judgement& j) const {
  if (!covers_dropped(access)) return;
  const auto k = with_dropped_restored([&] { return judge(access, ac, Explain::No); });
  // Nothing kept translates it (beyond the fresh walk, entries unchanged but for A/D:
  // cache_may_answer), and the widened judgement would be the same.
  if (k.decided_others.empty() && !k.cache_may_answer) return;
  for (const auto& a : k.allowed) {
    const bool known = std::any_of(j.allowed.begin(), j.allowed.end(), [&](const Allowed& x) {
      return same_outcome(x.outcome, a.outcome) && x.split_at == a.split_at &&
             x.second_physical == a.second_physical;
    });
    if (!known) {
      j.allowed.push_back(a);
      j.allowed.back().stale = true;
    }
  }
  j.decided_others.insert(j.decided_others.end(), k.decided_others.begin(), k.decided_others.end());
  j.others_under.insert(j.others_under.end(), k.others_under.begin(), k.others_under.end());
  j.cache_may_answer = true;
}

std::vector<std::pair<GuestPhys, unsigned>> Judge::dropped_places(const paging::Access& access,
                                                                  bool ac) const {
  std::vector<std::pair<GuestPhys, unsigned>> out;
  const auto s = state_for(ac);
  for (const auto& d : dropped_by_fault_) {
    if (access.address.value() - d.base >= d.bytes) continue;
    const auto decided = decide_cached(BaseView{flat_, memory_}, d.path, s, access);
    if (decided.kind == paging::Decision::Kind::Translation) {
      const auto room = static_cast<unsigned>(
          std::min<std::uint64_t>(access.size, Page - access.address.value() % Page));
      out.emplace_back(decided.physical, room);
    }
  }
  return out;
}

bool Judge::matches_dropped_by_fault(const paging::Access& access, bool ac,
                                     const Observed& observed) const {
  if (!covers_dropped(access)) return false;
  // The same judge over the same memory, its TLB holding again what the faults dropped:
  // a page-crossing access may use such an entry for either page.
  return allows(with_dropped_restored([&] { return judge(access, ac, Explain::No); }), access,
                observed);
}

bool Judge::allows(const Judgement& judgement, const paging::Access& access,
                   const Observed& observed) const {
  return std::any_of(judgement.allowed.begin(), judgement.allowed.end(),
                     [&](const Allowed& a) { return matches(a, access, observed); });
}

void Judge::remember_under(const paging::Access& access, const paging::CpuState& state,
                           bool faulted) {
  const auto u = judge_under(access, state);
  const auto page = access.address.value() - access.address.value() % Page;
  // After a fault, only a page that translated (the other page of an access that
  // crosses one): the #PF invalidated what would translate the faulting page. What a
  // cached walk under that state translates may have been used as well.
  using Kind = paging::Decision::Kind;
  if (!faulted || u.decided.kind == Kind::Translation)
    caches_.fill(u.decided, state, access.address);
  if (u.decided_second && (!faulted || u.decided_second->kind == Kind::Translation)) {
    caches_.fill(*u.decided_second, state, Linear(page + Page));
  }
  for (std::size_t i = 0; i < u.decided_others.size(); ++i) {
    if (u.decided_others[i].kind == Kind::Translation) {
      caches_.fill(u.decided_others[i], u.others_under[i].rules, u.others_under[i].page);
    }
  }
}

void Judge::widen_with_state(const paging::Access& access, const paging::CpuState& state,
                             Judgement u, Judgement& j) const {
  const auto page = access.address.value() - access.address.value() % Page;
  for (auto& a : u.allowed) {
    a.stale = true;
    // Its value was compared when the deviation was recognised.
    a.value_known = false;
    j.allowed.push_back(std::move(a));
  }
  j.decided_others.push_back(u.decided);
  j.others_under.push_back({Linear(page), state});
  if (u.decided_second) {
    j.decided_others.push_back(*u.decided_second);
    j.others_under.push_back({Linear(page + Page), state});
  }
  j.decided_others.insert(j.decided_others.end(), u.decided_others.begin(), u.decided_others.end());
  j.others_under.insert(j.others_under.end(), u.others_under.begin(), u.others_under.end());
}

void Judge::fill_from_others(const paging::Access& access, const Judgement& judgement,
                             const Allowed& chosen) {
  const auto& t = std::get<paging::Translation>(chosen.outcome);
  const auto frame = [](paging::GuestPhys pa) { return pa.value() - pa.value() % Page; };
  const std::uint64_t first_page = access.address.value() - access.address.value() % Page;
  for (std::size_t i = 0; i < judgement.decided_others.size(); ++i) {
    const auto& d = judgement.decided_others[i];
    const auto& under = judgement.others_under[i];
    if (d.kind != paging::Decision::Kind::Translation) continue;
    const bool first = under.page.value() == first_page;
    const auto used = first ? t.physical : chosen.second_physical;
    if (!first && chosen.split_at == 0) continue;
    if (frame(d.physical) == frame(used)) caches_.fill(d, under.rules, under.page);
  }
}

AccessVerdict Judge::commit(const paging::Access& access, bool ac, std::uint64_t write_value,
                            const Judgement& judgement, const Observed* observed) {
  AccessVerdict v;
  commit(access, ac, write_value, judgement, observed, v);
  return v;
}

void Judge::commit(const paging::Access& access, bool ac, std::uint64_t write_value,
                   const Judgement& judgement, const Observed* observed, AccessVerdict& v) {
  v.matched = AccessVerdict::None;
  v.entries.clear();
  v.ad_predictable = true;
  if (observed == nullptr) {
    v.matched = 0;
  } else {
    for (std::size_t k = 0; k < judgement.allowed.size(); ++k) {
      if (matches(judgement.allowed[k], access, *observed)) {
        v.matched = k;
        break;
      }
    }
  }
  // A write the architecture does not allow that succeeded (a platform that kept a
  // translation a #PF dropped, or something unexplained): the data went to a place the
  // model does not know; the places such a kept translation names are unknown now.
  if (observed != nullptr && !v.agrees() && observed->kind == Observed::Kind::Ok &&
      access.type == paging::AccessType::Write) {
    for (const auto& [at, bytes] : dropped_places(access, ac))
      mark_unknown(at.value(), bytes, true);
  }
  // An access that succeeded where the architecture allows no success (a known
  // deviation, or unexplained) walked something: what the fresh walks translated may
  // be cached now as after any success.
  if (observed != nullptr && !v.agrees() && observed->kind == Observed::Kind::Ok) {
    using Kind = paging::Decision::Kind;
    if (judgement.decided.kind == Kind::Translation) {
      caches_.fill(judgement.decided, state_for(ac), access.address);
    }
    if (judgement.decided_second && judgement.decided_second->kind == Kind::Translation) {
      caches_.fill(*judgement.decided_second, state_for(ac),
                   Linear(access.address.value() - access.address.value() % Page + Page));
    }
  }
  // Stale, foreign or nothing: what the CPU did to A/D cannot be predicted. Nor when a
  // translation cache may still hold a walk with the same outcome as the fresh one (an
  // entry rewritten without invalidation, e.g. with A clear): the CPU may have used it
  // and set nothing.
  v.ad_predictable =
      v.matched == 0 && judgement.decided_others.empty() && !judgement.cache_may_answer;
  v.entries.reserve(judgement.decided.entry_count);
  auto record = [&](const paging::Decision& d) {
    // The last entry read is a leaf when the walk translated or refused on rights.
    const bool reached_leaf =
        d.kind == paging::Decision::Kind::Translation ||
        (d.kind == paging::Decision::Kind::PageFault && (d.error_code & paging::PfError::P) != 0 &&
         (d.error_code & paging::PfError::Rsvd) == 0);
    for (unsigned i = 0; i < d.entry_count; ++i) {
      const auto& st = d.entries[i];
      if (st.pdpte_register) continue;  // a register, no A/D
      const auto at = st.address.value();
      if (std::any_of(v.entries.begin(), v.entries.end(),
                      [&](const EntryEffect& e) { return e.address == at; })) {
        continue;
      }
      const bool last = i + 1 == d.entry_count;
      const bool leaf = reached_leaf && last;
      const bool maps_page =
          leaf || (last && st.level > 1 &&
                   paging::entry_rules(state_, state_.mode(), st.level, st.value).leaf);
      v.entries.push_back({st.level, at, read_entry(GuestPhys(at)), 0, 0, leaf, maps_page});
    }
  };
  record(judgement.decided);
  if (judgement.decided_second) record(*judgement.decided_second);
  for (const auto& d : judgement.decided_others) record(d);
  auto effect = [&](std::uint64_t at) -> EntryEffect* {
    for (auto& e : v.entries) {
      if (e.address == at) return &e;
    }
    return nullptr;
  };

  const std::size_t k = v.agrees() ? v.matched : 0;
  const auto& effective = judgement.allowed[k].outcome;
  const bool succeeded = observed == nullptr
                             ? std::holds_alternative<paging::Translation>(effective)
                             : observed->kind == Observed::Kind::Ok;
  const auto* t = std::get_if<paging::Translation>(&effective);
  if (t != nullptr && succeeded) {
    for (const auto& [entry, bits] : t->ad_updates) {
      if (k != 0) {
        // A translation from the caches: the CPU may have set these bits, in the entry
        // as it is now, or not at all (a TLB hit walks nothing). A read of the entry
        // as data cannot be predicted until it is written again.
        mark_unknown(entry.value(), paging::entry_bytes(state_.mode()), true);
        if (auto* e = effect(entry.value())) e->may_set |= bits;
        continue;
      }
      const auto now = read_entry(entry);
      // A CPU that may have answered from a cache set these bits or not.
      if (!v.ad_predictable && (now & bits) != bits) {
        mark_unknown(entry.value(), paging::entry_bytes(state_.mode()), true);
      }
      if (paging::entry_bytes(state_.mode()) == sizeof(std::uint32_t)) {
        memory_.write32(entry, static_cast<std::uint32_t>(now | bits));
      } else {
        memory_.write64(entry, now | bits);
      }
      if (auto* e = effect(entry.value())) (v.ad_predictable ? e->must_set : e->may_set) |= bits;
    }
    const auto& chosen = judgement.allowed[k];
    if (access.type == paging::AccessType::Write) {
      const unsigned first = chosen.split_at != 0 ? chosen.split_at : access.size;
      // Where the data went is the CPU's choice among the allowed translations (a stale
      // one among them): with more than one place, none of them is known any more.
      const auto places = std::count_if(
          judgement.allowed.begin(), judgement.allowed.end(),
          [](const Allowed& x) { return std::holds_alternative<paging::Translation>(x.outcome); });
      const bool ambiguous = places > 1;
      for (const auto& x : judgement.allowed) {
        const auto* tx = std::get_if<paging::Translation>(&x.outcome);
        if (tx == nullptr || (!ambiguous && &x != &chosen)) continue;
        const unsigned n = x.split_at != 0 ? x.split_at : access.size;
        mark_unknown(tx->physical.value(), n, ambiguous);
        if (x.split_at != 0) {
          mark_unknown(x.second_physical.value(), access.size - n, ambiguous);
        }
      }
      if (t->physical.value() + first <= memory_.size()) {
        write_bytes(memory_, t->physical, first, write_value);
      }
      if (chosen.split_at != 0 &&
          chosen.second_physical.value() + (access.size - first) <= memory_.size()) {
        write_bytes(memory_, chosen.second_physical, access.size - first,
                    write_value >> (8 * first));
      }
    }
    caches_.fill(judgement.decided, state_for(ac), access.address);
    if (judgement.decided_second) {
      caches_.fill(*judgement.decided_second, state_for(ac),
                   Linear(access.address.value() - access.address.value() % Page + Page));
    }
    // Answered from a cached walk (a paging-structure-cache item among them): the CPU
    // may hold that translation in its TLB now, under the rules it was decided with,
    // for as long as nothing invalidates its page.
    if (k != 0) fill_from_others(access, judgement, chosen);
  } else if (const auto* pf = std::get_if<paging::PageFault>(&effective); pf != nullptr) {
    for (const auto& [entry, bits] : pf->may_set_accessed) {
      if (auto* e = effect(entry.value())) e->may_set |= bits;
      // The CPU may or may not have set them: a read of the entry as data cannot be
      // predicted until it is written again.
      if ((read_entry(entry) & bits) != bits) {
        mark_unknown(entry.value(), paging::entry_bytes(state_.mode()), true);
      }
    }
  }
  const bool page_fault =
      observed != nullptr ? observed->kind == Observed::Kind::Fault && observed->vector == VectorPf
                          : std::holds_alternative<paging::PageFault>(effective);
  // AMD, legacy PAE: a translation through the PDPTEs in memory (not the registers) may
  // be cached like any other: each page of the access whose walk that way gives what the
  // CPU used (a success), or that it may have translated before the other page faulted.
  if (observed != nullptr && state_.mode() == paging::PagingMode::Pae && options_.pdpt_walked) {
    auto ms = state_for(ac);
    ms.pdptes = pdptes_in_memory(ms);
    if (ms.pdptes != state_.pdptes) {
      const auto& chosen = judgement.allowed[k];
      const std::uint64_t first_page = access.address.value() - access.address.value() % Page;
      const bool crosses = judgement.decided_second.has_value();
      const Linear pages[] = {access.address, Linear(first_page + Page)};
      for (unsigned n = 0; n < (crosses ? 2U : 1U); ++n) {
        auto one = access;
        one.address = pages[n];
        one.size = 1;
        const auto walked = paging::decide(BaseView{flat_, memory_}, ms, one);
        if (walked.kind != paging::Decision::Kind::Translation) continue;
        bool used = false;
        if (succeeded && t != nullptr) {
          const auto physical =
              n == 0 || chosen.split_at == 0 ? t->physical : chosen.second_physical;
          used = walked.physical == physical;
        } else if (page_fault && crosses) {
          used = observed->cr2 - first_page < Page ? n == 1 : n == 0;  // the other page
        }
        if (used) caches_.fill(walked, ms, pages[n]);
      }
    }
  }
  if (page_fault) {
    // An access that crosses a page and faults on one page may have translated the
    // other first: that translation may now be cached (SDM §4.10.2.1).
    if (judgement.decided_second && !succeeded) {
      using Kind = paging::Decision::Kind;
      const Linear second_page(access.address.value() - access.address.value() % Page + Page);
      if (judgement.decided.kind == Kind::Translation &&
          judgement.decided_second->kind != Kind::Translation) {
        caches_.fill(judgement.decided, state_for(ac), access.address);
      } else if (judgement.decided_second->kind == Kind::Translation &&
                 judgement.decided.kind != Kind::Translation) {
        caches_.fill(*judgement.decided_second, state_for(ac), second_page);
      }
      // ... and so may what a cached walk translated for the page that did not fault.
      if (observed != nullptr) {
        const bool second_faulted = observed->cr2 >= second_page.value();
        for (std::size_t i = 0; i < judgement.decided_others.size(); ++i) {
          const auto& d = judgement.decided_others[i];
          const auto& under = judgement.others_under[i];
          if (d.kind == Kind::Translation && (under.page == second_page) != second_faulted) {
            caches_.fill(d, under.rules, under.page);
          }
        }
      }
    }
    // A #PF invalidates the TLB entries for the faulting address's page and the
    // paging-structure-cache entries that would translate it (SDM §4.10.4.1): CR2's
    // page, which for an access that crosses a page may be the second one.
    const auto* pf = std::get_if<paging::PageFault>(&effective);
    const Linear faulting = observed != nullptr ? Linear(observed->cr2)
                            : pf != nullptr     ? pf->cr2
                                                : access.address;
    std::vector<TranslationCache::TlbItem> dropped;
    caches_.tlb_items(faulting, dropped);
    // ... and the translations of that page the CPU may have cached from other walks
    // (paging-structure-cache items, values replaced since: SDM §4.10.2.3), which a
    // platform that keeps TLB entries across a #PF may keep as well.
    const std::uint64_t faulting_page = faulting.value() - faulting.value() % Page;
    for (std::size_t i = 0; i < judgement.decided_others.size(); ++i) {
      const auto& d = judgement.decided_others[i];
      const auto& under = judgement.others_under[i];
      const bool reached_leaf =
          d.kind == paging::Decision::Kind::Translation ||
          (d.kind == paging::Decision::Kind::PageFault &&
           (d.error_code & paging::PfError::P) != 0 && (d.error_code & paging::PfError::Rsvd) == 0);
      if (reached_leaf && under.page.value() == faulting_page) {
        dropped.push_back(TranslationCache::tlb_item(d, under.rules));
      }
    }
    for (auto& d : dropped) {
      const bool known = std::any_of(
          dropped_by_fault_.begin(), dropped_by_fault_.end(),
          [&](const TranslationCache::TlbItem& x) { return x.base == d.base && x.path == d.path; });
      if (!known) dropped_by_fault_.push_back(std::move(d));
    }
    note_invalidated(faulting, true);
    caches_.invalidate_for_fault(faulting);
  }
}

}  // namespace pagelab::lab::judge

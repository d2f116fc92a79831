#include "pagelab/lab/judge/scenario_model.hpp"

#include "judge/tlb_model.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab::scenario {

using namespace pagelab::paging;

CpuFeatures full_features() {
  CpuFeatures f;
  f.page1g = f.pcid = f.smep = f.smap = f.pku = f.la57 = true;
  return f;
}

std::uint64_t read_bytes(const PhysicalMemory& memory, GuestPhys pa, unsigned size) {
  std::uint64_t value = 0;
  for (unsigned i = 0; i < size; ++i) {
    const std::uint64_t a = pa.value() + i;
    const std::uint64_t word = memory.read64(GuestPhys(a & ~std::uint64_t{7}));
    value |= ((word >> ((a & 7) * 8)) & 0xff) << (i * 8);
  }
  return value;
}

ScenarioModel::ScenarioModel(CpuFeatures features, std::uint64_t memory_bytes)
    : features_(features), memory_(std::make_unique<BufferMemory>(memory_bytes)) {}

ScenarioModel::ScenarioModel(const PhysicalMemory& ram, const CpuState& state,
                             GuestPhys tables_from, GuestPhys tables_limit)
    : features_(state.features),
      memory_(std::make_unique<BufferMemory>(ram.size())),
      mode_(state.mode()),
      state_(state) {
  for (std::uint64_t a = 0; a + 8 <= ram.size(); a += 8) {
    if (const auto v = ram.read64(GuestPhys(a)); v != 0) memory_->write64(GuestPhys(a), v);
  }
  tables_base_ = tables_from;
  frames_ = std::make_unique<FrameAllocator>(tables_from, tables_limit);
  builder_ = std::make_unique<PageTableBuilder>(*memory_, *frames_, mode_, features_, state.root());
}

void ScenarioModel::ensure_built() {
  if (builder_) return;
  frames_ = std::make_unique<FrameAllocator>(tables_base_, tables_base_ + TablesArea);
  CpuFeatures f = features_;
  if (mode_ == PagingMode::Level5) f.linear_bits = 57;
  builder_ = std::make_unique<PageTableBuilder>(*memory_, *frames_, mode_, f);
  const std::uint64_t rflags = state_.rflags;
  state_ = make_cpu_state(mode_, builder_->root(), f);
  state_.rflags |= rflags;
  if (mode_ == PagingMode::Pae) load_pdptes(*memory_, state_);
}

std::uint64_t ScenarioModel::read_entry(Linear va, unsigned level) const {
  return builder_->read_entry(va, level);
}

GuestPhys ScenarioModel::entry_address(Linear va, unsigned level) const {
  return builder_->entry_address(va, level);
}

void ScenarioModel::before_table_change() {
  // Until something was accessed nothing can be cached; afterwards the tables as they
  // were may live on in the TLB and paging-structure caches until invalidated
  // (SDM §4.10.4.2), through any number of later changes.
  if (!accessed_since_snapshot_) return;
  auto copy = std::make_unique<SparseMemory>();
  const auto& bytes = memory_->bytes();
  for (std::size_t a = 0; a + 8 <= bytes.size(); a += 8) {
    std::uint64_t v = 0;
    std::memcpy(&v, bytes.data() + a, sizeof v);
    if (v != 0) copy->write64(GuestPhys(a), v);
  }
  stale_.push_back({std::move(copy), state_.efer, state_.cr4, false, {}});
  accessed_since_snapshot_ = false;
}

void ScenarioModel::write_data(GuestPhys pa, unsigned size, std::uint64_t value) {
  for (unsigned i = 0; i < size; ++i) {
    const std::uint64_t a = pa.value() + i;
    const GuestPhys word_at(a & ~std::uint64_t{7});
    const unsigned shift = static_cast<unsigned>((a & 7) * 8);
    std::uint64_t word = memory_->read64(word_at);
    word = (word & ~(std::uint64_t{0xff} << shift)) | (((value >> (i * 8)) & 0xff) << shift);
    memory_->write64(word_at, word);
  }
}

void ScenarioModel::apply(const Statement& statement) {
  auto refuse = [&](const std::string& why) { throw ScenarioError(statement.where, why); };
  try {
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, SetMode>) {
            mode_ = a.mode;
          } else if constexpr (std::is_same_v<T, PlaceTables>) {
            tables_base_ = a.base;
          } else if constexpr (std::is_same_v<T, SetControl>) {
            ensure_built();
            if (a.reg == ControlRegister::Pkru) {  // WRPKRU invalidates nothing
              state_.pkru = static_cast<std::uint32_t>((state_.pkru & ~a.clear) | a.set);
              return;
            }
            // Translations cached under the old NXE / PSE outlive the change.
            const std::uint64_t walk_bits = a.reg == ControlRegister::Efer  ? Efer::Nxe
                                            : a.reg == ControlRegister::Cr4 ? Cr4::Pse
                                                                            : 0;
            if (((a.set | a.clear) & walk_bits) != 0) before_table_change();
            std::uint64_t* reg = a.reg == ControlRegister::Cr0    ? &state_.cr0
                                 : a.reg == ControlRegister::Cr4  ? &state_.cr4
                                 : a.reg == ControlRegister::Efer ? &state_.efer
                                                                  : &state_.rflags;
            const std::uint64_t before = *reg;
            *reg = (*reg | a.set) & ~a.clear;
            // MOV to CR4 changing PGE invalidates every translation, global ones too
            // (SDM §4.10.4.1).
            if (a.reg == ControlRegister::Cr4 && ((before ^ *reg) & Cr4::Pge) != 0) {
              stale_.clear();
            }
          } else if constexpr (std::is_same_v<T, PlaceTable>) {
            ensure_built();
            if (a.level >= top_level(mode_) || (mode_ == PagingMode::Pae && a.level == 2)) {
              refuse(
                  fmt::format("table: level {} has no entry above it that this statement can "
                              "point (the top level is CR3's; PAE's PDPT is registers)",
                              a.level));
            }
            before_table_change();
            for (std::uint64_t off = 0; off < FrameAllocator::FrameSize; off += 8) {
              memory_->write64(a.at + off, 0);
            }
            builder_->write_entry(a.va, a.level + 1,
                                  a.at.value() | Pte::Present | Pte::Writable | Pte::User);
          } else if constexpr (std::is_same_v<T, Map>) {
            ensure_built();
            before_table_change();
            builder_->map(a.va, a.pa, a.length, a.page_size, a.flags);
          } else if constexpr (std::is_same_v<T, Unmap>) {
            ensure_built();
            before_table_change();
            builder_->unmap(a.va, a.length);
          } else if constexpr (std::is_same_v<T, Protect>) {
            ensure_built();
            before_table_change();
            builder_->protect(a.va, a.length, a.set, a.clear);
          } else if constexpr (std::is_same_v<T, Recursive>) {
            ensure_built();
            before_table_change();
            builder_->set_recursive(a.index);
          } else if constexpr (std::is_same_v<T, SetEntry>) {
            ensure_built();
            before_table_change();
            const std::uint64_t old = builder_->read_entry(a.va, a.level);
            builder_->write_entry(a.va, a.level, a.value ? *a.value : (old & ~a.clear) | a.set);
          } else if constexpr (std::is_same_v<T, Invlpg>) {
            ensure_built();
            for (auto& g : stale_) g.invalidated.push_back(a.va);
          } else if constexpr (std::is_same_v<T, Flush>) {
            ensure_built();
            // MOV CR3 without PCIDs flushes all but global translations (SDM §4.10.4.1).
            for (auto& g : stale_) g.global_only = true;
            if (mode_ == PagingMode::Pae) {
              if (auto gp = load_pdptes(*memory_, state_)) refuse("MOV CR3: " + gp->reason);
            }
          } else if constexpr (std::is_same_v<T, Poke>) {
            ensure_built();
            memory_->write64(a.pa, a.value);
          } else {
            refuse("internal: an access reached ScenarioModel::apply");
          }
        },
        statement.action);
    // Before the first access the OS would load CR3 after building: PAE's PDPTE
    // registers see the finished tables.
    if (mode_ == PagingMode::Pae && !any_access_ && builder_) load_pdptes(*memory_, state_);
  } catch (const std::invalid_argument& e) {
    refuse(e.what());
  } catch (const std::out_of_range& e) {
    refuse(fmt::format("outside the guest's {} MiB of RAM: {}", memory_->size() >> 20, e.what()));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const ScenarioError*>(&e) != nullptr) throw;
    refuse(e.what());
  }
}

CpuState ScenarioModel::state_for(const AccessStep& step) const {
  CpuState s = state_;
  if (step.ac) s.rflags |= Rflags::Ac;
  return s;
}

AccessJudgement ScenarioModel::judge(const AccessStep& step) const {
  const CpuState s = state_for(step);
  AccessJudgement j;
  j.walk = walk(*memory_, s, step.access);
  auto value_of = [&](const Outcome& o) -> std::uint64_t {
    const auto* t = std::get_if<Translation>(&o);
    if (t == nullptr || step.access.type != AccessType::Read) return 0;
    if (t->physical.value() + step.access.size > memory_->size()) return 0;
    return read_bytes(*memory_, t->physical, step.access.size);
  };
  j.allowed.push_back({j.walk.outcome, value_of(j.walk.outcome), false});
  // A translation cached from older tables: only whole translations (the TLB does not
  // cache faults), not invalidated by INVLPG of an address in its page, and after
  // MOV CR3 only global ones.
  for (const auto& g : stale_) {
    const Walk old = walk_cached(*g.tables, s, g.efer, g.cr4, step.access);
    const auto* t = std::get_if<Translation>(&old.outcome);
    if (t == nullptr || (g.global_only && !t->global)) continue;
    const std::uint64_t lo = t->page_base.value(), hi = lo + page_bytes(t->page_size);
    if (std::any_of(g.invalidated.begin(), g.invalidated.end(),
                    [&](Linear v) { return v.value() >= lo && v.value() < hi; })) {
      continue;
    }
    if (std::any_of(j.allowed.begin(), j.allowed.end(),
                    [&](const AllowedOutcome& a) { return a.outcome == old.outcome; })) {
      continue;
    }
    j.allowed.push_back({old.outcome, value_of(old.outcome), true});
  }
  return j;
}

void ScenarioModel::commit(const AccessStep& step, const AccessJudgement& judgement,
                           const Outcome& outcome) {
  accessed_since_snapshot_ = true;
  any_access_ = true;
  last_.clear();
  const bool four_byte = mode_ == PagingMode::Bits32;
  for (const auto& s : judgement.walk.steps) {
    const bool pdpte_register = mode_ == PagingMode::Pae && s.level == 3;
    if (pdpte_register) continue;
    last_.push_back({s.level, s.entry_address.value(), s.value, 0, 0});
  }
  auto record = [&](const std::vector<AdUpdate>& updates, bool must) {
    for (const auto& [address, set] : updates) {
      for (auto& r : last_) {
        if (r.address == address.value()) (must ? r.must_set : r.may_set) |= set;
      }
    }
  };
  // A/D follow the fresh walk, which is what a CPU that walks the tables sets.
  if (const auto* t = std::get_if<Translation>(&judgement.walk.outcome)) {
    record(t->ad_updates, true);
  } else if (const auto* pf = std::get_if<PageFault>(&judgement.walk.outcome)) {
    record(pf->may_set_accessed, false);
  }
  for (const auto& r : last_) {
    if (r.must_set == 0) continue;
    if (four_byte) {
      memory_->write32(GuestPhys(r.address), memory_->read32(GuestPhys(r.address)) |
                                                 static_cast<std::uint32_t>(r.must_set));
    } else {
      memory_->write64(GuestPhys(r.address), memory_->read64(GuestPhys(r.address)) | r.must_set);
    }
  }
  if (const auto* t = std::get_if<Translation>(&outcome)) {
    if (step.access.type == AccessType::Write &&
        t->physical.value() + step.access.size <= memory_->size()) {
      write_data(t->physical, step.access.size, step.write_value);
    }
  }
}

ScenarioModel::AdAllowed ScenarioModel::ad_allowed(unsigned level) const {
  AdAllowed out;
  for (const auto& r : last_) {
    if (r.level != level) continue;
    out.reached = true;
    out.entry_address = r.address;
    auto options = [&](std::uint64_t flag) {
      if ((r.before & flag) != 0 || (r.must_set & flag) != 0) return std::vector<bool>{true};
      if ((r.may_set & flag) != 0) return std::vector<bool>{false, true};
      return std::vector<bool>{false};
    };
    out.accessed = options(Pte::Accessed);
    out.dirty = options(Pte::Dirty);
  }
  return out;
}

}  // namespace pagelab::lab::scenario

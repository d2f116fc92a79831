#include "pagelab/lab/judge/scenario_model.hpp"

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

// Every store a statement makes goes through here, so that a CPU behind the model can
// replay exactly those stores (no copy or diff of the whole memory).
class ScenarioModel::ChangeLog : public PhysicalMemory {
 public:
  explicit ChangeLog(BufferMemory& memory) : memory_(memory) {}
  std::uint64_t read64(GuestPhys a) const override { return memory_.read64(a); }
  std::uint32_t read32(GuestPhys a) const override { return memory_.read32(a); }
  void write64(GuestPhys a, std::uint64_t v) override {
    note(a, sizeof(std::uint64_t));
    memory_.write64(a, v);
  }
  void write32(GuestPhys a, std::uint32_t v) override {
    note(a, sizeof(std::uint32_t));
    memory_.write32(a, v);
  }
  std::uint64_t size() const override { return memory_.size(); }

  void begin() { before_.clear(); }
  std::vector<MemoryChange> changes() const {
    std::vector<MemoryChange> out;
    for (const auto& [address, old] : before_) {
      const GuestPhys at(address);
      const auto now = old.bytes == sizeof(std::uint32_t) ? memory_.read32(at) : memory_.read64(at);
      if (now != old.value) out.push_back({at, old.bytes, now});
    }
    return out;
  }

 private:
  struct Old {
    unsigned bytes;
    std::uint64_t value;
  };
  void note(GuestPhys a, unsigned bytes) {
    if (before_.contains(a.value())) return;
    before_[a.value()] = {bytes,
                          bytes == sizeof(std::uint32_t) ? memory_.read32(a) : memory_.read64(a)};
  }
  BufferMemory& memory_;
  std::map<std::uint64_t, Old> before_;
};

ScenarioModel::ScenarioModel(CpuFeatures features, std::uint64_t memory_bytes)
    : features_(features),
      memory_(std::make_unique<BufferMemory>(memory_bytes)),
      log_(std::make_unique<ChangeLog>(*memory_)) {}

ScenarioModel::~ScenarioModel() = default;
ScenarioModel::ScenarioModel(ScenarioModel&&) noexcept = default;
ScenarioModel& ScenarioModel::operator=(ScenarioModel&&) noexcept = default;

ScenarioModel::ScenarioModel(const PhysicalMemory& ram, const CpuState& state,
                             GuestPhys tables_from, GuestPhys tables_limit)
    : features_(state.features),
      memory_(std::make_unique<BufferMemory>(ram.size())),
      log_(std::make_unique<ChangeLog>(*memory_)),
      mode_(state.mode()),
      state_(state) {
  for (std::uint64_t a = 0; a + 8 <= ram.size(); a += 8) {
    if (const auto v = ram.read64(GuestPhys(a)); v != 0) memory_->write64(GuestPhys(a), v);
  }
  tables_base_ = tables_from;
  frames_ = std::make_unique<FrameAllocator>(tables_from, tables_limit);
  builder_ = std::make_unique<PageTableBuilder>(*log_, *frames_, mode_, features_, state.root());
  judge_ = std::make_unique<judge::Judge>(*memory_, state_);
}

void ScenarioModel::ensure_built() {
  if (builder_) return;
  frames_ = std::make_unique<FrameAllocator>(tables_base_, tables_base_ + TablesArea);
  CpuFeatures f = features_;
  if (mode_ == PagingMode::Level5) f.linear_bits = 57;
  builder_ = std::make_unique<PageTableBuilder>(*log_, *frames_, mode_, f);
  const std::uint64_t rflags = state_.rflags;
  state_ = make_cpu_state(mode_, builder_->root(), f);
  state_.rflags |= rflags;
  if (mode_ == PagingMode::Pae) load_pdptes(*memory_, state_);
  judge_ = std::make_unique<judge::Judge>(*memory_, state_);
}

judge::Judge& ScenarioModel::the_judge() {
  ensure_built();
  return *judge_;
}

std::uint64_t ScenarioModel::read_entry(Linear va, unsigned level) const {
  return builder_->read_entry(va, level);
}

GuestPhys ScenarioModel::entry_address(Linear va, unsigned level) const {
  return builder_->entry_address(va, level);
}

void ScenarioModel::write_data(GuestPhys pa, unsigned size, std::uint64_t value) {
  judge::write_bytes(*memory_, pa, size, value);
}

void ScenarioModel::apply(const Statement& statement) {
  auto refuse = [&](const std::string& why) { throw ScenarioError(statement.where, why); };
  log_->begin();
  changes_.clear();
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
            if (a.reg == ControlRegister::Rflags) {
              state_.rflags = (state_.rflags | a.set) & ~a.clear;
              return;
            }
            auto& j = the_judge();
            const auto& now = j.state();
            auto next = [&](std::uint64_t v) { return (v | a.set) & ~a.clear; };
            switch (a.reg) {
              case ControlRegister::Cr0:
                j.write_cr0(next(now.cr0));
                break;
              case ControlRegister::Cr4:
                j.write_cr4(next(now.cr4));
                break;
              case ControlRegister::Efer:
                j.write_efer(next(now.efer));
                break;
              case ControlRegister::Pkru:
                // `pkru VALUE` clears every bit and sets VALUE.
                j.write_pkru(static_cast<std::uint32_t>((now.pkru & ~a.clear) | a.set));
                break;
              case ControlRegister::Rflags:
                break;
            }
          } else if constexpr (std::is_same_v<T, PlaceTable>) {
            ensure_built();
            if (a.level >= top_level(mode_) || (mode_ == PagingMode::Pae && a.level == 2)) {
              refuse(
                  fmt::format("table: level {} has no entry above it that this statement can "
                              "point (the top level is CR3's; PAE's PDPT is registers)",
                              a.level));
            }
            for (std::uint64_t off = 0; off < FrameAllocator::FrameSize; off += 8) {
              log_->write64(a.at + off, 0);
            }
            builder_->write_entry(a.va, a.level + 1,
                                  a.at.value() | Pte::Present | Pte::Writable | Pte::User);
          } else if constexpr (std::is_same_v<T, Map>) {
            ensure_built();
            builder_->map(a.va, a.pa, a.length, a.page_size, a.flags);
          } else if constexpr (std::is_same_v<T, Unmap>) {
            ensure_built();
            builder_->unmap(a.va, a.length);
          } else if constexpr (std::is_same_v<T, Protect>) {
            ensure_built();
            builder_->protect(a.va, a.length, a.set, a.clear);
          } else if constexpr (std::is_same_v<T, Recursive>) {
            ensure_built();
            builder_->set_recursive(a.index);
          } else if constexpr (std::is_same_v<T, SetEntry>) {
            ensure_built();
            const std::uint64_t old = builder_->read_entry(a.va, a.level);
            builder_->write_entry(a.va, a.level, a.value ? *a.value : (old & ~a.clear) | a.set);
          } else if constexpr (std::is_same_v<T, Invlpg>) {
            the_judge().invlpg(a.va);
          } else if constexpr (std::is_same_v<T, Flush>) {
            auto& j = the_judge();
            if (auto gp = j.write_cr3(j.state().cr3)) refuse("MOV CR3: " + gp->reason);
          } else if constexpr (std::is_same_v<T, Poke>) {
            ensure_built();
            log_->write64(a.pa, a.value);
          } else {
            refuse("internal: an access reached ScenarioModel::apply");
          }
        },
        statement.action);
    // Before the first access the OS would load CR3 after building: PAE's PDPTE
    // registers see the finished tables.
    if (mode_ == PagingMode::Pae && !any_access_ && judge_) {
      auto s = judge_->state();
      load_pdptes(*memory_, s);
      judge_->reset(s);
    }
    if (judge_) {
      const auto rflags = state_.rflags;
      state_ = judge_->state();
      state_.rflags = rflags;
    }
    changes_ = log_->changes();
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
  return judge_->judge(step.access, (state_for(step).rflags & Rflags::Ac) != 0);
}

judge::AccessVerdict ScenarioModel::commit(const AccessStep& step, const AccessJudgement& judgement,
                                           const judge::Observed* observed) {
  any_access_ = true;
  auto v = judge_->commit(step.access, (state_for(step).rflags & Rflags::Ac) != 0, step.write_value,
                          judgement, observed);
  last_ = v.entries;
  return v;
}

void ScenarioModel::advance(const AccessStep& step) {
  const bool ac = (state_for(step).rflags & Rflags::Ac) != 0;
  commit(step, judge_->judge_fresh(step.access, ac), nullptr);
}

ScenarioModel::AdAllowed ScenarioModel::ad_allowed(unsigned level) const {
  return ad_allowed(last_, level);
}

ScenarioModel::AdAllowed ScenarioModel::ad_allowed(const std::vector<judge::EntryEffect>& entries,
                                                   unsigned level) {
  AdAllowed out;
  for (const auto& r : entries) {
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
    break;  // the fresh walk's entry at this level comes first
  }
  return out;
}

}  // namespace pagelab::lab::scenario

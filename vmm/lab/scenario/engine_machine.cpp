#include "pagelab/lab/scenario/engine_machine.hpp"

#include <fmt/core.h>

#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/cpu_features.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab::scenario {

using namespace pagelab::paging;

namespace {

using EngineRegister = pagelab::lab::ControlRegister;
constexpr std::uint32_t PageFaultVector = 14;
constexpr std::uint32_t GeneralProtectionVector = 13;
// Tables the scenario adds after the engine started come from the top of the engine's
// table pool, which its own setup (a few dozen frames) never reaches.
constexpr std::uint64_t LateTablesBytes = 256 << 10;

const CpuidBit* cpuid_bit_named(const std::string& name) {
  for (const auto& b : reported_cpuid_bits()) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

// A machine that is gone (QEMU exited) says so itself; anything else is the guest's stop.
// A hang also says what the backend saw (how long, what the probe was waiting for):
// no registers tell a hang's cause.
std::string stop_text(const GuestStopped& e) {
  if (e.kind().rfind("QEMU ", 0) == 0) return e.kind();
  const auto exit = e.json().find("exit");
  if (e.kind().rfind("hang", 0) == 0 && exit != e.json().end() && exit->is_string() &&
      !exit->get<std::string>().empty()) {
    return fmt::format("the guest stopped: {} ({})", e.kind(), exit->get<std::string>());
  }
  return "the guest stopped: " + e.kind();
}

class EngineMachine : public Machine {
 public:
  EngineMachine(const LabOptions& options, bool explain_all)
      : lab_(options), explain_all_(explain_all) {}

  [[nodiscard]] std::string name() const override { return std::string(lab_.backend_name()); }
  [[nodiscard]] CpuFeatures features() const override { return lab_.cpu().paging_features(); }
  [[nodiscard]] std::optional<std::string> stopped() const override { return stopped_; }

  std::optional<std::string> precheck(const Scenario& scenario) override {
    if (!scenario.rules.empty() && features().amd != (scenario.rules == "amd")) {
      return fmt::format("the file states {}'s rules (cpu {}); this CPU reports {}",
                         scenario.rules == "amd" ? "AMD" : "Intel", scenario.rules,
                         lab_.cpu().vendor());
    }
    for (const auto& f : scenario.requires_features) {
      // SMEP and SMAP are tried even when CPUID lacks them: some hypervisors enforce
      // them anyway, and the engine reports a refused CR4 bit as the reason.
      if (f == "SMEP" || f == "SMAP") continue;
      const CpuidBit* b = cpuid_bit_named(f);
      if (b != nullptr && !lab_.cpu().has(*b)) {
        static constexpr const char* regs[] = {"EAX", "EBX", "ECX", "EDX"};
        return fmt::format("the CPU does not offer {} (CPUID {:#x}.{}:{}[{}] is 0)", f, b->leaf,
                           b->subleaf, regs[static_cast<int>(b->reg)], b->bit);
      }
    }
    // Every paging mode is tried: a platform that refuses one (PVM: legacy paging) says
    // so when the engine enters it, and that is the skip reason start() returns.
    return std::nullopt;
  }

  std::optional<std::string> start(const Scenario& scenario, ScenarioModel& model) override {
    EngineOptions options;
    options.mode = model.mode();
    options.explain_all = explain_all_;
    // The control bits the setup asked for, relative to the engine's default state.
    const CpuState base = make_cpu_state(options.mode, GuestPhys(0), features());
    const CpuState& want = model.state();
    options.cr0_set = want.cr0 & ~base.cr0;
    options.cr0_clear = base.cr0 & ~want.cr0;
    options.cr4_set = want.cr4 & ~base.cr4;
    options.cr4_clear = base.cr4 & ~want.cr4 & ~Cr4::La57;
    options.efer_set = want.efer & ~base.efer;
    options.efer_clear = base.efer & ~want.efer;
    rflags_ac_ = (want.rflags & Rflags::Ac) != 0;
    try {
      engine_ = std::make_unique<Engine>(lab_, options);
      for (const auto& st : scenario.statements) {
        if (std::holds_alternative<AccessStep>(st.action)) break;
        build(st);
      }
      engine_->start();
      // PKRU is not part of entering the mode: the first batch sets it.
      if (want.pkru != 0) pending_.push_back(OpWriteControl{EngineRegister::Pkru, want.pkru});
    } catch (const GuestStopped& e) {
      stopped_ = stop_text(e);
      return fmt::format("the guest stopped while entering the scenario's state: {}", e.kind());
    } catch (const BackendGone& e) {
      stopped_ = e.what();
      return stopped_;
    } catch (const std::exception& e) {
      return fmt::format("the platform refused the scenario's setup: {}", e.what());
    }
    CpuState state = engine_->cpu_state();
    state.pkru = want.pkru;  // set by the first batch (above)
    if (state.mode() == PagingMode::Pae) {
      // Some platforms (QEMU TCG) set bit 5 of the PDPTEs they walk, which the SDM
      // reserves there; the model starts from the PDPTEs the engine loaded instead.
      for (unsigned i = 0; i < state.pdptes.size(); ++i) {
        lab_.physical().write64(state.root() + i * sizeof(std::uint64_t), state.pdptes[i]);
      }
    }
    const GuestPhys limit(ExperimentLayout::TablePoolLimit);
    model = ScenarioModel(lab_.physical(), state, limit - LateTablesBytes, limit);
    return std::nullopt;
  }

  std::optional<std::string> apply(const Statement& st, const ScenarioModel& after) override {
    if (stopped_) return stopped_;
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, Invlpg>) {
            pending_.push_back(OpInvlpg{a.va});
          } else if constexpr (std::is_same_v<T, Flush>) {
            pending_.push_back(OpWriteControl{EngineRegister::Cr3, engine_->cpu_state().cr3});
          } else if constexpr (std::is_same_v<T, SetControl>) {
            switch (a.reg) {
              case scenario::ControlRegister::Cr0:
                pending_.push_back(OpWriteControl{EngineRegister::Cr0, after.state().cr0});
                break;
              case scenario::ControlRegister::Cr4:
                pending_.push_back(OpWriteControl{EngineRegister::Cr4, after.state().cr4});
                break;
              case scenario::ControlRegister::Efer:
                pending_.push_back(OpWriteControl{EngineRegister::Efer, after.state().efer});
                break;
              case scenario::ControlRegister::Rflags:
                rflags_ac_ = (after.state().rflags & Rflags::Ac) != 0;
                break;
              case scenario::ControlRegister::Pkru:
                pending_.push_back(OpWriteControl{EngineRegister::Pkru, after.state().pkru});
                break;
            }
          } else {
            // Tables and data: replay every store the statement made, as the guest's own
            // store or (via host, poke) a foreign write.
            const bool foreign = std::is_same_v<T, Poke> ||
                                 (std::is_same_v<T, SetEntry> && writer_of(a) == Writer::Host);
            // The probe stores whole entries: 4 bytes in 32-bit paging, where an 8-byte
            // store would also rewrite the neighbouring entry.
            const bool four_byte = after.mode() == PagingMode::Bits32;
            for (const auto& c : after.last_changes()) {
              if (foreign) {
                const GuestPhys word(c.address.value() & ~std::uint64_t{7});
                pending_.push_back(OpForeignWrite{word, after.memory().read64(word)});
              } else if (four_byte && c.bytes == sizeof(std::uint64_t)) {
                pending_.push_back(OpWriteEntry{c.address, static_cast<std::uint32_t>(c.value)});
                pending_.push_back(OpWriteEntry{c.address + 4, c.value >> 32});
              } else {
                pending_.push_back(OpWriteEntry{c.address, c.value});
              }
            }
          }
        },
        st.action);
    return std::nullopt;
  }

  [[nodiscard]] bool judges() const override { return true; }

  void queue(const AccessStep& step, const ScenarioModel&) override {
    OpAccess op;
    op.address = step.access.address;
    op.type = step.access.type;
    op.size = step.access.size;
    op.privilege = step.access.privilege;
    op.ac = step.ac || rflags_ac_;
    op.write_value = step.write_value;
    // An expectation that fails is printed with the walk behind it.
    op.explain = !step.expects.empty();
    pending_.push_back(op);
  }

  std::vector<std::variant<Observation, std::string>> flush(const ScenarioModel& model,
                                                            bool read_back) override {
    std::vector<std::variant<Observation, std::string>> out;
    auto lose_all = [&] {
      for (const auto& op : pending_) {
        if (std::holds_alternative<OpAccess>(op)) out.emplace_back(*stopped_);
      }
      pending_.clear();
      return out;
    };
    if (stopped_) return lose_all();
    std::vector<CheckedResult> results;
    try {
      results = engine_->run(pending_);
    } catch (const GuestStopped& e) {
      // Every access of the batch is lost with the guest; the rest of the scenario is
      // skipped at once (apply() says so) instead of paying a watchdog per access.
      stopped_ = stop_text(e);
      return lose_all();
    } catch (const std::exception& e) {
      // The engine or the backend failed mid-batch: nothing after it can be trusted.
      stopped_ = e.what();
      return lose_all();
    }
    pending_.clear();
    std::optional<std::string> failed_before;  // an operation before the access failed
    const CheckedResult* last_access = nullptr;
    out.reserve(results.size());
    for (auto& r : results) {
      if (!std::holds_alternative<OpAccess>(r.op)) {
        if (r.skipped) {
          failed_before = fmt::format("{} was not run: {}", op_name(r.op), *r.skipped);
        } else if (r.observed.status == ProbeStatus::Fault) {
          failed_before =
              fmt::format("{} faulted on this platform: {} error code {:#x}", op_name(r.op),
                          vector_name(r.observed.vector), r.observed.error_code);
        }
        continue;
      }
      last_access = &r;
      if (failed_before) {
        out.emplace_back(*std::exchange(failed_before, std::nullopt));
      } else if (r.skipped) {
        out.emplace_back(*r.skipped);
      } else {
        out.emplace_back(observation_of(std::move(r)));
      }
    }
    if (read_back && last_access != nullptr && !out.empty()) {
      if (auto* o = std::get_if<Observation>(&out.back())) {
        // The entries the access used, as the CPU left them (for `expect ad`).
        for (const auto& e : o->entries) {  // moved there from last_access
          const GuestPhys at(e.address);
          o->entries_after.emplace_back(e.address, model.mode() == PagingMode::Bits32
                                                       ? lab_.physical().read32(at)
                                                       : lab_.physical().read64(at));
        }
      }
    }
    return out;
  }

 private:
  // Takes the judgement and entries over: a batch holds thousands of them.
  static Observation observation_of(CheckedResult&& r) {
    Observation o;
    o.value = r.observed.value;
    o.vector = r.observed.vector;
    o.error_code = static_cast<std::uint32_t>(r.observed.error_code);
    o.cr2 = r.observed.cr2;
    if (r.observed.status == ProbeStatus::Ok) {
      o.kind = Observation::Kind::Ok;
    } else if (r.observed.status == ProbeStatus::Fault && r.observed.vector == PageFaultVector) {
      o.kind = Observation::Kind::PageFault;
    } else if (r.observed.status == ProbeStatus::Fault &&
               r.observed.vector == GeneralProtectionVector) {
      o.kind = Observation::Kind::GeneralProtection;
    } else {
      o.kind = Observation::Kind::OtherFault;
    }
    o.agrees = r.agrees;
    o.report = std::move(r.report);
    o.deviation = std::move(r.deviation);
    if (r.judgement) o.judgement = std::move(*r.judgement);
    o.entries = std::move(r.entries);
    return o;
  }

  template <typename T>
  static Writer writer_of(const T& a) {
    if constexpr (std::is_same_v<T, SetEntry>) {
      return a.writer;
    } else {
      return Writer::Probe;
    }
  }

  // Setup before the engine starts: host edits of the engine's space.
  void build(const Statement& st) {
    auto& space = engine_->space();
    std::visit(
        [&](const auto& a) {
          using T = std::decay_t<decltype(a)>;
          if constexpr (std::is_same_v<T, PlaceTable>) {
            for (std::uint64_t off = 0; off < FrameAllocator::FrameSize; off += 8) {
              lab_.physical().write64(a.at + off, 0);
            }
            space.builder().write_entry(a.va, a.level + 1,
                                        a.at.value() | Pte::Present | Pte::Writable | Pte::User);
          } else if constexpr (std::is_same_v<T, Map>) {
            space.map(a.va, a.pa, a.length, a.page_size, a.flags);
          } else if constexpr (std::is_same_v<T, Unmap>) {
            space.unmap(a.va, a.length);
          } else if constexpr (std::is_same_v<T, Protect>) {
            space.protect(a.va, a.length, a.set, a.clear);
          } else if constexpr (std::is_same_v<T, Recursive>) {
            space.set_recursive(a.index);
          } else if constexpr (std::is_same_v<T, SetEntry>) {
            const std::uint64_t old = space.read_entry(a.va, a.level);
            space.builder().write_entry(a.va, a.level,
                                        a.value ? *a.value : (old & ~a.clear) | a.set);
          } else if constexpr (std::is_same_v<T, Poke>) {
            lab_.physical().write64(a.pa, a.value);
          }
          // mode, tables, controls: in the engine's options; invlpg/flush: nothing cached.
        },
        st.action);
  }

  Lab lab_;
  bool explain_all_;
  std::unique_ptr<Engine> engine_;
  std::vector<Op> pending_;
  bool rflags_ac_ = false;
  std::optional<std::string> stopped_;  // the guest stopped: why
};

}  // namespace

std::optional<std::string> kvm_unavailable_reason() {
  return kvm::System::unavailable_reason();
}

std::unique_ptr<Machine> make_engine_machine(const LabOptions& options, bool explain_every_access) {
  return std::make_unique<EngineMachine>(options, explain_every_access);
}

}  // namespace pagelab::lab::scenario

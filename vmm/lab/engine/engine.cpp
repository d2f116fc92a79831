#include <algorithm>
#include <cstring>
#include <list>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/batch_records.hpp"
#include "engine/engine_impl.hpp"
#include "engine/host_writes.hpp"
#include "engine/plan_memory.hpp"
#include "judge/cached_walk.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/judge/access_deviations.hpp"
#include "pagelab/lab/judge/ad_deviations.hpp"
#include "pagelab/lab/machine/disassembler.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {
namespace {

using paging::Cr0;
using paging::Cr3;
using paging::Cr4;
using paging::Efer;
using paging::GuestPhys;
using paging::Linear;
using paging::Pte;

constexpr std::uint64_t Page = 4096;
constexpr std::uint32_t VectorGp = 13, VectorPf = 14;
constexpr unsigned PdpteCount = 4;

bool long_mode(paging::PagingMode mode) {
  return mode == paging::PagingMode::Level4 || mode == paging::PagingMode::Level5;
}

// Plantable: guest RAM, and not the probe, its batch area or the page tables.
bool plantable(std::uint64_t gpa, std::uint64_t ram_bytes) {
  if (gpa < PROBE_BATCH_LIMIT || gpa >= ram_bytes) return false;
  if (gpa >= ExperimentLayout::TablePoolBase && gpa < ExperimentLayout::TablePoolLimit)
    return false;
  return (gpa % Page) <= Page - 2;
}

paging::Access to_access(const OpAccess& a) {
  paging::Access acc;
  acc.address = a.address;
  acc.type = a.type;
  acc.privilege = a.privilege;
  acc.size = a.size;
  return acc;
}

}  // namespace

Engine::Impl::Impl(Lab& l)
    : lab(l),
      model(l.physical().size()),
      // AMD's APM has no PDPTE registers: legacy PAE walks may read the PDPT in memory.
      judge(model, paging::CpuState{}, {.pdpt_walked = l.cpu().vendor() == "AuthenticAMD"}) {
  const auto& cpu = lab.cpu();
  has_invpcid = cpu.has(cpuid::Invpcid);
  has_pku = cpu.has(cpuid::Pku);
  platform = platform_keys(lab);
  keeps_after_fault = keeps_tlb_entries_across_faults(platform);
  for (const auto& d : known_access_deviations()) {
    if (applies_to(platform, d)) deviations.push_back(&d);
  }
  for (const auto size : {paging::PageSize::Size4K, paging::PageSize::Size2M,
                          paging::PageSize::Size4M, paging::PageSize::Size1G}) {
    for (const bool faulted : {false, true}) {
      ad_may_set[ad_index(size, faulted)] = ad_bits_deviations_may_set(platform, size, faulted);
    }
  }
  // The probe writes these while a batch runs (the model has them as they were before):
  // an access that reaches them as data, through an alias, checks its translation only.
  judge.set_unpredictable({{PROBE_MAILBOX_GPA, PROBE_MAILBOX_GPA + Page},
                           {PROBE_STACK_TOP - Page, PROBE_LOAD_GPA + PROBE_MAX_SIZE},
                           {PROBE_BATCH_GPA, PROBE_BATCH_LIMIT}});
}

unsigned Engine::Impl::code_bits() const {
  return long_mode(mode) ? 64 : 32;
}

std::uint64_t Engine::Impl::read_entry(const paging::PhysicalMemory& m, GuestPhys a) const {
  return entry_bytes() == sizeof(std::uint32_t) ? m.read32(a) : m.read64(a);
}

void Engine::Impl::write_entry(paging::PhysicalMemory& m, GuestPhys a, std::uint64_t v) const {
  if (entry_bytes() == sizeof(std::uint32_t)) {
    m.write32(a, static_cast<std::uint32_t>(v));
  } else {
    m.write64(a, v);
  }
}

void Engine::Impl::note(const std::string& text) {
  if (std::find(notes.begin(), notes.end(), text) == notes.end()) notes.push_back(text);
}

void Engine::Impl::note_deviation(const std::string& id, const std::string& description) {
  // Once per deviation: formatting the note for every case would cost more than judging.
  const bool noted = std::any_of(notes.begin(), notes.end(), [&](const std::string& n) {
    return n.size() > id.size() && n.compare(0, id.size(), id) == 0 && n[id.size()] == ':';
  });
  if (!noted) note(fmt::format("{}: {}", id, description));
}

paging::PageSize Engine::Impl::leaf_size(unsigned level) const {
  switch (level) {
    case 1:
      return paging::PageSize::Size4K;
    case 2:
      return mode == paging::PagingMode::Bits32 ? paging::PageSize::Size4M
                                                : paging::PageSize::Size2M;
    default:
      return paging::PageSize::Size1G;
  }
}

void Engine::Impl::sync_model() {
  auto& host = *host_writes;
  auto& ram = lab.ram();
  if (ram.base().value() != 0) throw std::logic_error("the engine expects guest RAM at GPA 0");
  auto* bytes = model.bytes().data();
  const auto* real = ram.host(ram.base(), ram.size());
  if (full_sync) {
    std::memcpy(bytes, real, ram.size());
    host.take();
    full_sync = false;
  } else {
    // Everything else the model already moved forward op by op, as the CPU did.
    for (const auto page : host.take()) {
      const auto at = page * HostWrites::Page;
      if (at + HostWrites::Page <= ram.size()) std::memcpy(bytes + at, real + at, HostWrites::Page);
    }
    for (const auto word : resync) {
      if (word + sizeof(std::uint64_t) <= ram.size()) {
        std::memcpy(bytes + word, real + word, sizeof(std::uint64_t));
        judge.learned(GuestPhys(word), sizeof(std::uint64_t));
      }
    }
  }
  resync.clear();
  for (const auto& [a, v] : lies) model.write64(GuestPhys(a), v);
}

Engine::Engine(Lab& lab, const EngineOptions& options)
    : lab_(lab),
      options_(options),
      host_writes_(std::make_unique<HostWrites>(lab.physical())),
      space_(*host_writes_, options.mode, lab.cpu().paging_features()),
      impl_(std::make_unique<Impl>(lab)) {
  impl_->host_writes = host_writes_.get();
  impl_->mode = options.mode;
  impl_->explain_all = options.explain_all;
  impl_->explain_deviations = options.explain_deviations;
  impl_->keep_agreeing_judgements = options.keep_agreeing_judgements;
  impl_->keep_agreeing_entries = options.keep_agreeing_entries;
  impl_->track_written = options.track_written_words;
}

Engine::~Engine() = default;

std::size_t Engine::batch_capacity() {
  return (PROBE_BATCH_LIMIT - PROBE_BATCH_GPA) / PROBE_BATCH_RECORD - 1;  // BOP_END
}

namespace {

// Drops the probe to protected mode with paging off, from wherever an earlier engine
// left it (64-bit mode, compatibility mode, or legacy paging).
void leave_paging(Lab& lab) {
  auto require = [&](const ProbeReport& r, const std::string& step) {
    if (!r.ok() || r.code_bits != 32) {
      throw std::runtime_error(fmt::format("starting the experiment: {} failed: {} ({})", step,
                                           r.outcome_text(), r.mode_name()));
    }
  };
  if (lab.last_report().code_bits == 64) {
    require(lab.command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE32), "leaving 64-bit mode");
  }
  if ((lab.last_report().cr0 & Cr0::Pg) != 0) {
    require(lab.command(PROBE_CMD_WRITE_CR0, lab.last_report().cr0 & ~Cr0::Pg),
            "turning paging off");
  }
  if ((lab.last_report().efer & Efer::Lme) != 0) {
    require(lab.command(PROBE_CMD_WRMSR, Efer::Msr, lab.last_report().efer & ~Efer::Lme),
            "clearing EFER.LME");
  }
}

}  // namespace

void Engine::start() {
  const auto features = lab_.cpu().paging_features();
  const auto mode = options_.mode;
  if (mode == paging::PagingMode::Level5 && !features.la57) {
    throw std::runtime_error("5-level paging needs LA57, which this CPU does not report");
  }
  if (mode == paging::PagingMode::Pae && !features.pae) {
    throw std::runtime_error("PAE paging needs PAE, which this CPU does not report");
  }
  const unsigned bits = impl_->code_bits();
  auto require = [&](const ProbeReport& r, const std::string& step) {
    if (!r.ok() || r.code_bits != bits) {
      throw std::runtime_error(fmt::format("starting the experiment: {} failed: {} ({})", step,
                                           r.outcome_text(), r.mode_name()));
    }
  };
  if (lab_.last_report().code_bits == 16) lab_.enter_protected();
  std::uint64_t cr4 = 0;
  if (long_mode(mode)) {
    if (lab_.last_report().code_bits == 32 && (lab_.last_report().efer & Efer::Lma) == 0) {
      leave_paging(lab_);
      lab_.enter_long(mode);
    }
    require(lab_.command(PROBE_CMD_REPORT), "reaching 64-bit mode");
    require(lab_.command(PROBE_CMD_WRITE_CR3, space_.root().value()),
            "loading CR3 with the experiment's root");
    const auto efer =
        ((lab_.last_report().efer | Efer::Sce | (features.nx ? Efer::Nxe : 0) | options_.efer_set) &
         ~options_.efer_clear) |
        Efer::Sce;
    require(lab_.command(PROBE_CMD_WRMSR, Efer::Msr, efer),
            fmt::format("writing EFER={:#x}", efer));
    const auto cr0 = (lab_.last_report().cr0 | Cr0::Wp | options_.cr0_set) & ~options_.cr0_clear;
    require(lab_.command(PROBE_CMD_WRITE_CR0, cr0), fmt::format("writing CR0={:#x}", cr0));
    cr4 = (lab_.last_report().cr4 | options_.cr4_set) & ~options_.cr4_clear;
    require(lab_.command(PROBE_CMD_WRITE_CR4, cr4),
            fmt::format("writing CR4={:#x} (a bit this CPU refuses?)", cr4));
  } else {
    start_legacy(features);
    cr4 = lab_.last_report().cr4;
  }
  const auto& r = lab_.last_report();
  if (long_mode(mode) && r.cr4 != cr4) {
    throw std::runtime_error(fmt::format(
        "starting the experiment: CR4 reads {:#x} after writing {:#x}: the CPU refused bits {:#x}",
        r.cr4, cr4, r.cr4 ^ cr4));
  }
  paging::CpuState s;
  s.cr0 = r.cr0;
  s.cr3 = r.cr3;
  s.cr4 = r.cr4;
  s.efer = r.efer;
  s.rflags = paging::Rflags::Fixed1;
  // The oracle follows the CR4 bits that are really set (PVM enforces SMEP/SMAP
  // without reporting them in CPUID).
  s.features = features;
  if (s.mode() != mode) {
    throw std::runtime_error(
        fmt::format("starting the experiment: the probe reports {} paging ({}), not {} paging",
                    paging::to_string(s.mode()), r.registers_text(), paging::to_string(mode)));
  }
  // Setting CR0.PG loaded the PDPTE registers from the experiment's PDPT; the engine
  // never sets A there, so an A bit now is the platform's own doing.
  if (mode == paging::PagingMode::Pae) {
    for (unsigned i = 0; i < PdpteCount; ++i) {
      const auto v = lab_.physical().read64(s.root() + i * sizeof(std::uint64_t));
      if ((v & Pte::Present) != 0 && (v & Pte::Accessed) != 0) {
        auto o = impl_->judge.options();
        o.pdpte_accessed_ignored = true;
        impl_->judge.set_options(o);
        impl_->note(
            "PAE: the platform set bit 5 (A) of a PDPTE in memory, a bit SDM table 4-8 reserves "
            "in PAE PDPTEs; the engine reads PDPTEs without it");
      }
    }
    // The judge's model is RAM at the first batch; the PDPTEs come from RAM now.
    impl_->full_sync = true;
    impl_->sync_model();
    impl_->judge.load_pdptes(s);
  }
  impl_->judge.reset(s);
  impl_->full_sync = true;
  if ((s.cr4 & (Cr4::Smep | Cr4::Smap)) != 0 && !(features.smep || features.smap)) {
    impl_->note("CR4.SMEP/SMAP accepted although CPUID does not report SMEP/SMAP");
  }
  started_ = true;
}

// 32-bit or PAE paging: from protected mode with paging off, CR4 and CR3 first, then
// CR0.PG (which loads PAE's PDPTE registers). The step a platform may refuse is the
// last one: PVM raises #GP(0) on MOV CR0 setting PG with EFER.LME=0.
void Engine::start_legacy(const paging::CpuFeatures& features) {
  const auto mode = options_.mode;
  const auto name = paging::to_string(mode);
  auto require = [&](const ProbeReport& r, const std::string& step) {
    if (!r.ok() || r.code_bits != 32) {
      throw std::runtime_error(fmt::format("starting {} paging: {} failed: {} ({})", name, step,
                                           r.outcome_text(), r.mode_name()));
    }
  };
  leave_paging(lab_);
  const std::uint64_t mode_cr4 =
      mode == paging::PagingMode::Pae ? Cr4::Pae : (features.pse ? Cr4::Pse : 0);
  const auto cr4 = (mode_cr4 | options_.cr4_set) & ~options_.cr4_clear;
  require(lab_.command(PROBE_CMD_WRITE_CR4, cr4),
          fmt::format("writing CR4={:#x} (a bit this CPU refuses?)", cr4));
  if (lab_.last_report().cr4 != cr4) {
    throw std::runtime_error(fmt::format(
        "starting {} paging: CR4 reads {:#x} after writing {:#x}: the CPU refused bits {:#x}", name,
        lab_.last_report().cr4, cr4, lab_.last_report().cr4 ^ cr4));
  }
  require(lab_.command(PROBE_CMD_WRITE_CR3, space_.root().value()),
          "loading CR3 with the experiment's root");
  // EFER.NXE makes XD meaningful in PAE paging; 32-bit paging ignores it.
  const auto nxe = mode == paging::PagingMode::Pae && features.nx ? Efer::Nxe : 0;
  const auto efer =
      (((lab_.last_report().efer & ~Efer::Nxe) | Efer::Sce | nxe | options_.efer_set) &
       ~options_.efer_clear);
  require(lab_.command(PROBE_CMD_WRMSR, Efer::Msr, efer), fmt::format("writing EFER={:#x}", efer));
  const auto cr0 =
      (lab_.last_report().cr0 | Cr0::Pg | Cr0::Wp | options_.cr0_set) & ~options_.cr0_clear;
  const auto& r = lab_.command(PROBE_CMD_WRITE_CR0, cr0);
  if (!r.ok()) {
    const auto text = fmt::format(
        "{} paging refused by the platform: MOV CR0 setting PG with EFER.LME=0 raised {}", name,
        r.outcome_text());
    // Leave the probe as it was found: protected mode, paging off.
    lab_.command(PROBE_CMD_WRITE_CR4, 0);
    throw std::runtime_error(text);
  }
  require(r, fmt::format("writing CR0={:#x}", cr0));
}

paging::CpuState Engine::cpu_state() const {
  return impl_->state();
}

void Engine::override_oracle_memory(GuestPhys address, std::uint64_t value) {
  impl_->lies[address.value()] = value;
  impl_->full_sync = true;
}

void Engine::set_explain_deviations(bool explain) {
  options_.explain_deviations = explain;
  impl_->explain_deviations = explain;
}

std::vector<std::uint64_t> Engine::take_written_words() {
  std::vector<std::uint64_t> out;
  out.swap(impl_->written);
  return out;
}

std::vector<std::string> Engine::ad_violations() const {
  return impl_->ad_violations;
}
std::uint64_t Engine::vm_exits() const {
  return impl_->exits;
}
std::vector<std::string> Engine::platform_notes() const {
  return impl_->notes;
}

std::vector<CheckedResult> Engine::run(std::span<const Op> batch) {
  if (!started_) throw std::logic_error("Engine::run before Engine::start");
  std::vector<CheckedResult> out;
  out.reserve(batch.size());
  impl_->ad_violations.clear();
  // A foreign write is a sync point inside the batch (BOP_SYNC): the host writes while
  // the probe waits there, and the batch goes on.
  for (std::size_t i = 0; i < batch.size();) {
    const auto n = std::min(batch_capacity(), batch.size() - i);
    i += impl_->run_chunk(batch.subspan(i, n), out, true);
  }
  return out;
}

std::vector<OpResult> Engine::run_unchecked(std::span<const Op> batch) {
  if (!started_) throw std::logic_error("Engine::run_unchecked before Engine::start");
  std::vector<CheckedResult> out;
  out.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size();) {
    const auto n = std::min(batch_capacity(), batch.size() - i);
    i += impl_->run_chunk(batch.subspan(i, n), out, false);
  }
  std::vector<OpResult> results;
  results.reserve(out.size());
  for (auto& r : out) results.push_back(r.observed);
  return results;
}

std::size_t Engine::Impl::run_chunk(std::span<const Op> ops, std::vector<CheckedResult>& out,
                                    bool check) {
  const auto first = out.size();
  std::vector<std::size_t> sent;  // index into out of each record
  std::vector<batch::Record> records;
  records.reserve(ops.size());
  if (check) sync_model();
  // Fetches need an instruction at the target; the oracle says where that is, walking
  // the tables as the chunk will have made them by then.
  PlanMemory plan(check ? &model : nullptr, lab.physical(), entry_bytes());
  auto sim_state = state();
  bool sim_cr3_written = false;
  auto sim_walk = [&](const OpAccess& a) {
    if (sim_cr3_written && mode == paging::PagingMode::Pae) {
      if (judge.options().pdpte_accessed_ignored) {
        // As the judge loads them on this platform: without the A bit it set (else
        // the load refuses them and the plan walks the PDPTEs of before MOV CR3).
        paging::load_pdptes(judge::PdptesUnaccessed(plan.physical(),
                                                    GuestPhys(sim_state.cr3 & paging::bits(5, 31))),
                            sim_state);
      } else {
        paging::load_pdptes(plan.physical(), sim_state);
      }
    }
    auto d = paging::decide(plan, sim_state, to_access(a));  // where it goes, no words
    // A fetch a platform may run under the other vendor's rules (a known deviation):
    // planted there too, so that it comes back rather than running whatever is there.
    if (a.type == paging::AccessType::Fetch && d.kind != paging::Decision::Kind::Translation &&
        sim_state.features.amd) {
      auto intel = sim_state;
      intel.features.amd = false;
      if (auto other = paging::decide(plan, intel, to_access(a));
          other.kind == paging::Decision::Kind::Translation) {
        d = other;
      }
    }
    return d;
  };
  // The planted instruction must not be what an earlier access of the same batch reads
  // or overwrites: the chunk then ends before the fetch (the batch runs on in the next).
  const bool any_fetch = std::any_of(ops.begin(), ops.end(), [](const Op& op) {
    const auto* a = std::get_if<OpAccess>(&op);
    return a != nullptr && a->type == paging::AccessType::Fetch;
  });
  struct Touched {
    std::uint64_t from, to;  // [from, to) of an earlier access
    bool write;
  };
  std::vector<Touched> touched;
  std::size_t consumed = 0;
  for (const auto& op : ops) {
    CheckedResult r;
    r.op = op;
    if (const auto* w = std::get_if<OpWriteControl>(&op)) {
      if (w->reg == ControlRegister::Pkru && !has_pku) {
        r.skipped = "WRPKRU needs PKU, which CPUID does not report (and may end the run on PVM)";
      } else if (w->reg == ControlRegister::Efer) {
        // The engine keeps EFER.SCE as it set it at start().
        r.op = OpWriteControl{w->reg, w->value | Efer::Sce};
      } else if (w->reg == ControlRegister::Cr3) {
        sim_state.cr3 = w->value & ~Cr3::NoFlush;
        sim_cr3_written = true;
      }
      // Where a later fetch goes depends on the control bits written before it in the
      // same batch (SMEP, NXE, WP...): the plan must follow them, or the fetch runs
      // from a page nothing was planted in.
      if (w->reg == ControlRegister::Cr0) sim_state.cr0 = w->value;
      if (w->reg == ControlRegister::Cr4) sim_state.cr4 = w->value;
      if (w->reg == ControlRegister::Efer) sim_state.efer = w->value | Efer::Sce;
    } else if (std::holds_alternative<OpInvpcid>(op) && !has_invpcid) {
      r.skipped = "INVPCID is not reported by CPUID (and ends the run on PVM)";
    } else if (const auto* we = std::get_if<OpWriteEntry>(&op)) {
      plan.write(we->entry.value(), entry_bytes(), we->value);
    } else if (const auto* f = std::get_if<OpForeignWrite>(&op)) {
      // Eight bytes: two entries of 32-bit paging.
      const auto at = f->address.value();
      if (entry_bytes() == 4) {
        plan.write(at, 4, f->value & 0xffff'ffffU);
        plan.write(at + 4, 4, f->value >> 32);
      } else {
        plan.write(at, 8, f->value);
      }
      // Written when the probe reaches it, after any planting: a fetch of those bytes
      // later in the chunk would not find the planted instruction.
      touched.push_back({at, at + sizeof(std::uint64_t), true});
    } else if (const auto* a = std::get_if<OpAccess>(&op);
               a && a->type != paging::AccessType::Fetch &&
               (any_fetch || a->type == paging::AccessType::Write)) {
      const auto w = sim_walk(*a);
      if (w.kind == paging::Decision::Kind::Translation) {
        const auto pa = w.physical.value();
        touched.push_back({pa, pa + a->size, a->type == paging::AccessType::Write});
        // A write through an alias of the probe's own memory (its IVT, mailbox, stack,
        // code and data, batch records: a page table that names frame 0, read as a
        // large page) would overwrite the machine that runs the batch.
        if (a->type == paging::AccessType::Write && pa < PROBE_BATCH_LIMIT) {
          r.skipped = fmt::format(
              "write to {:#x}: the probe's own memory (below {:#x}), which runs the batch", pa,
              PROBE_BATCH_LIMIT);
        }
      }
    } else if (a && a->type == paging::AccessType::Fetch) {
      const auto w = sim_walk(*a);
      if (w.kind == paging::Decision::Kind::Translation) {
        const paging::GuestPhys physical = w.physical;
        const auto pa = physical.value();
        // A read clashes only when planting changes what it reads (a front-end that
        // planted the instruction everywhere before, as the fuzzer does, loses nothing).
        const auto* now = pa + 2 <= lab.ram().size() ? lab.ram().host(physical, 2) : nullptr;
        const bool planted =
            now != nullptr && now[0] == BATCH_FETCH_RETURN_0 && now[1] == BATCH_FETCH_RETURN_1;
        const bool clash = std::any_of(touched.begin(), touched.end(), [&](const Touched& t) {
          return t.from < pa + 2 && pa < t.to && (t.write || !planted);
        });
        if (clash && consumed > 0) break;
        if (plantable(pa, lab.ram().size())) {
          auto* p = lab.ram().host(physical, 2);
          p[0] = BATCH_FETCH_RETURN_0;
          p[1] = BATCH_FETCH_RETURN_1;
          plan.planted(pa, BATCH_FETCH_RETURN_0, BATCH_FETCH_RETURN_1);
        } else {
          r.skipped = fmt::format(
              "fetch target {:#x} is outside guest RAM, the probe, its batch area, a page table or "
              "the last byte of a page: nothing planted there",
              pa);
        }
      }
    }
    if (!r.skipped) {
      records.push_back(batch::encode(r.op, mode));
      sent.push_back(out.size());
    } else {
      r.observed.status = ProbeStatus::BadCommand;
    }
    out.push_back(std::move(r));
    ++consumed;
  }
  plan.restore();  // the judge starts from the model as it was
  if (!records.empty()) {
    auto* area = lab.ram().host(GuestPhys(PROBE_BATCH_GPA), records.size() * PROBE_BATCH_RECORD);
    std::memcpy(area, records.data(), records.size() * PROBE_BATCH_RECORD);
    const auto before = lab.exits();
    const auto on_sync = [&](GuestPhys record) {
      const auto k = (record.value() - PROBE_BATCH_GPA) / PROBE_BATCH_RECORD;
      const auto* f = std::get_if<OpForeignWrite>(&out[sent.at(k)].op);
      if (f == nullptr) {
        throw std::runtime_error(fmt::format(
            "the probe stopped at record {} of the batch, which is not a sync point", k));
      }
      lab.physical().write64(f->address, f->value);
    };
    const auto& rep = lab.batch(GuestPhys(PROBE_BATCH_GPA), records.size(), on_sync);
    exits += lab.exits() - before;
    if (!rep.ok() || rep.code_bits != code_bits()) {
      throw std::runtime_error(fmt::format(
          "the batch did not complete: {} ({}); the engine runs batches in {} paging, with the "
          "{}-bit dispatcher",
          rep.outcome_text(), rep.mode_name(), paging::to_string(mode), code_bits()));
    }
    for (std::size_t k = 0; k < records.size(); ++k) {
      batch::Record rec;
      std::memcpy(rec.data(), area + k * PROBE_BATCH_RECORD, rec.size());
      auto& r = out[sent[k]];
      // The probe reports the batch done only after its BOP_END record: it reached
      // every record, so an untouched status means success.
      r.observed = batch::decode(rec, r.op);
    }
  }
  if (check) check_chunk(std::span(out).subspan(first));
  return consumed;
}

void Engine::Impl::apply_control(CheckedResult& r) {
  const auto& w = std::get<OpWriteControl>(r.op);
  if (w.reg == ControlRegister::Cr3 && state().mode() == paging::PagingMode::Pae) {
    reload_pdptes(r);
    return;
  }
  if (r.observed.status != ProbeStatus::Ok) return;  // a refused write changes nothing
  switch (w.reg) {
    case ControlRegister::Cr0:
      judge.write_cr0(w.value);
      break;
    case ControlRegister::Cr3:
      judge.write_cr3(w.value);
      break;
    case ControlRegister::Cr4:
      judge.write_cr4(w.value);
      break;
    case ControlRegister::Efer:
      judge.write_efer(w.value);
      break;
    case ControlRegister::Pkru:
      judge.write_pkru(static_cast<std::uint32_t>(w.value));
      break;
  }
}

// MOV CR3 in PAE paging loads the PDPTE registers (SDM §4.4.1); a present PDPTE with a
// reserved bit makes it raise #GP(0) and load nothing. AMD's APM keeps no PDPTE
// registers in legacy PAE mode: there the reserved bits surface at the next walk as a
// #PF with RSVD, so a successful MOV CR3 is allowed too.
void Engine::Impl::reload_pdptes(CheckedResult& r) {
  const auto& w = std::get<OpWriteControl>(r.op);
  const auto& ob = r.observed;
  auto next = state();
  next.cr3 = w.value & ~Cr3::NoFlush;
  const auto gp = judge.load_pdptes(next);
  if (!gp) {
    if (ob.status != ProbeStatus::Ok) return;  // a refused write changes nothing
    judge.write_cr3(w.value);
    return;
  }
  if (ob.status == ProbeStatus::Fault && ob.vector == VectorGp && ob.error_code == 0) return;
  if (ob.status == ProbeStatus::Ok && judge.options().pdpt_walked) {
    judge.write_cr3_walked(w.value);
    return;
  }
  r.agrees = false;
  r.report = fmt::format(
      "MOV CR3 {:#x} in PAE paging: {}\nallowed: #GP(0), the PDPTE registers unchanged (SDM "
      "§4.4.1){}\nobserved: {}",
      w.value, gp->reason, judge.options().pdpt_walked ? ", or (AMD) success" : "",
      observed_text(r.op, ob));
}

void Engine::Impl::check_chunk(std::span<CheckedResult> results) {
  std::map<std::uint64_t, EntryUse> entries;  // GPA -> how the batch's accesses used it
  // An entry the guest writes holds what it wrote: what earlier accesses may have set
  // in the old value no longer matters.
  const auto rewritten = [&](std::uint64_t at) {
    if (const auto it = entries.find(at); it != entries.end()) {
      it->second.may = 0;
      it->second.faulted_as_leaf = false;
      it->second.uncertain = false;
    }
  };
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    if (r.skipped) continue;
    std::visit(
        [&](const auto& o) {
          using T = std::decay_t<decltype(o)>;
          if constexpr (std::is_same_v<T, OpAccess>) {
            check_access(r, entries, i);
          } else if constexpr (std::is_same_v<T, OpWriteEntry>) {
            if (r.observed.status == ProbeStatus::Ok) {
              judge.write_entry(o.entry, o.value);
              rewritten(o.entry.value());
            } else {
              r.agrees = false;
              r.report = fmt::format(
                  "the probe could not write the entry at {:#x}: {}\n(entries are written through "
                  "the identity map of the table pool {:#x}..{:#x})",
                  o.entry.value(), observed_text(r.op, r.observed), ExperimentLayout::TablePoolBase,
                  ExperimentLayout::TablePoolLimit);
            }
          } else if constexpr (std::is_same_v<T, OpForeignWrite>) {
            judge.foreign_write(o.address, o.value);
            rewritten(o.address.value());
            if (entry_bytes() == 4) rewritten(o.address.value() + 4);
          } else if constexpr (std::is_same_v<T, OpWriteControl>) {
            apply_control(r);
          } else if constexpr (std::is_same_v<T, OpInvlpg>) {
            judge.invlpg(o.address);
          } else if constexpr (std::is_same_v<T, OpInvpcid>) {
            judge.invpcid(o.type, o.address);
          } else if constexpr (std::is_same_v<T, OpTogglePge>) {
            judge.toggle_pge();
          } else if constexpr (std::is_same_v<T, OpReadControl>) {
            const auto& ob = r.observed;
            const auto& state = this->state();
            const auto efer_mask = ~Efer::Sce;
            if (ob.cr0 != state.cr0 || ob.cr3 != state.cr3 || ob.cr4 != state.cr4 ||
                (ob.efer & efer_mask) != (state.efer & efer_mask)) {
              r.agrees = false;
              r.report = fmt::format(
                  "the oracle assumes CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x}\n"
                  "the guest has       CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x}",
                  state.cr0, state.cr3, state.cr4, state.efer, ob.cr0, ob.cr3, ob.cr4, ob.efer);
            }
          }
        },
        r.op);
  }
  // A/D read-back: every entry a walk used, compared with what the accesses imply.
  auto& real = lab.physical();
  // The next batch starts from what the CPU really left in these words.
  for (const auto& [addr, info] : entries) resync.push_back(addr & ~std::uint64_t{7});
  for (const auto& [addr, info] : entries) {
    if (info.uncertain) continue;
    const auto& [leaf, level, last, may, faulted_as_leaf, faulted_leaf_size, uncertain] = info;
    const auto got = read_entry(real, GuestPhys(addr));
    const auto want = read_entry(model, GuestPhys(addr));
    // Bits an access of the batch may or may not have set differ either way.
    const auto differ = (got ^ want) & ~may;
    std::vector<std::string> problems;
    const auto ad = Pte::Accessed | Pte::Dirty;
    if ((got & ~ad) != (want & ~ad)) {
      problems.push_back(
          fmt::format("entry bits other than A/D differ: {:#x} expected", want & ~ad));
    }
    if (leaf) {
      if ((differ & Pte::Accessed) != 0) {
        problems.push_back((want & Pte::Accessed) != 0 ? "leaf A not set after a successful access"
                                                       : "leaf A set although no access succeeded");
      }
      if ((differ & Pte::Dirty) != 0) {
        problems.push_back((want & Pte::Dirty) != 0 ? "leaf D not set after a successful write"
                                                    : "leaf D set without a successful write");
      }
    } else {
      if ((differ & Pte::Dirty) != 0 && (want & Pte::Dirty) == 0)
        problems.push_back("D set on a non-leaf entry");
      if ((differ & Pte::Accessed) != 0 && (want & Pte::Accessed) != 0) {
        problems.push_back("upper-level A not set although a walk through it succeeded");
      }
    }
    if (problems.empty()) continue;
    auto& r = results[last];
    // A platform's known way with A/D names the case, as an access deviation does; one
    // that has another, unexplained disagreement stays unexplained.
    if (r.agrees || r.deviation) {
      const AdReadBack last_use{
          platform, leaf, leaf_size(level), r.observed.status == ProbeStatus::Fault, got, want};
      // The bits may be from an earlier access that used the entry as a leaf and faulted.
      const AdReadBack faulted_use{platform, true, faulted_leaf_size, true, got, want};
      const auto* d = find_ad_deviation(last_use);
      if (d == nullptr && faulted_as_leaf) d = find_ad_deviation(faulted_use);
      if (d != nullptr) {
        if (!r.deviation) r.deviation = d->id;
        r.agrees = false;
        note_deviation(d->id, d->description);
        continue;
      }
    }
    for (const auto& p : problems) {
      const auto text =
          fmt::format("entry at {:#x} (after op {}): {}; read back {:#x}", addr, last, p, got);
      ad_violations.push_back(text);
      r.agrees = false;
      if (!r.report.empty()) r.report += '\n';
      r.report += "A/D: ";
      r.report += text;
    }
  }
}

namespace {

// The bytes an access of `size` bytes puts where a translation sends it: (address,
// bytes), one pair per page it reaches.
void add_places(const judge::Allowed& x, unsigned size,
                std::vector<std::pair<GuestPhys, unsigned>>& out) {
  const auto* t = std::get_if<paging::Translation>(&x.outcome);
  if (t == nullptr) return;
  const unsigned first = x.split_at != 0 ? x.split_at : size;
  out.emplace_back(t->physical, first);
  if (x.split_at != 0) out.emplace_back(x.second_physical, size - first);
}

judge::Observed observed_of(const OpResult& r) {
  judge::Observed ob;
  ob.kind = r.status == ProbeStatus::Ok ? judge::Observed::Kind::Ok : judge::Observed::Kind::Fault;
  ob.vector = r.vector;
  ob.error_code = r.error_code;
  ob.cr2 = r.cr2;
  ob.value = r.value;
  return ob;
}

}  // namespace

void Engine::Impl::check_access(CheckedResult& r, std::map<std::uint64_t, EntryUse>& entries,
                                std::size_t index) {
  const auto& a = std::get<OpAccess>(r.op);
  const bool ac = a.ac && a.privilege == paging::Privilege::Supervisor;
  const auto acc = to_access(a);
  const auto explain = explain_all || a.explain ? judge::Explain::Yes : judge::Explain::No;
  auto& j = scratch;
  judge.judge(acc, ac, explain, j);
  auto ob = observed_of(r.observed);
  // A fetch that faulted while executing the bytes at its target (RIP there, the fault
  // not the fetch's own: no #PF at the target's page, no #GP for a target that is not
  // canonical) did translate: the CPU went to a page without the engine's planted
  // return, which only a translation the plan did not follow (a stale or a deviant one)
  // leads to. As an outcome it is a fetch that translated; what those bytes did is no
  // paging outcome.
  const bool fetch_own_gp =
      ob.vector == 13 &&
      std::any_of(j.allowed.begin(), j.allowed.end(), [](const judge::Allowed& x) {
        return std::holds_alternative<paging::GeneralProtection>(x.outcome);
      });
  if (a.type == paging::AccessType::Fetch && ob.kind == judge::Observed::Kind::Fault &&
      r.observed.rip == a.address.value() && !fetch_own_gp &&
      !(ob.vector == 14 && ob.cr2 / paging::page_bytes(paging::PageSize::Size4K) ==
                               a.address.value() / paging::page_bytes(paging::PageSize::Size4K))) {
    ob = judge::Observed{};
  }
  // A disagreement may be a known platform deviation; one of them (a host write the
  // platform never sees) needs the tables as they were before the host's writes.
  std::optional<paging::Walk> foreign;
  bool before_foreign = false;
  const bool allowed = judge.allows(j, acc, ob);
  // A read-back the front-end checks itself is never matched to deviations nor printed.
  const bool keep = keep_agreeing_judgements || (!allowed && !a.checked_by_caller);
  r.allowed.clear();
  if (keep) {
    r.allowed.reserve(j.allowed.size());
    for (const auto& x : j.allowed) r.allowed.push_back(x.outcome);
  }
  if (!allowed && judge.has_foreign_writes()) {
    foreign = judge.walk_before_foreign_writes(acc, ac, ob);
    before_foreign = foreign.has_value();
  }
  // A disagreement may be a known deviation. Looked for before commit() moves the model
  // on: the walks under other control bits see the tables as this access found them.
  const AccessDeviation* deviation = nullptr;
  // The control state under which a walk gave what the platform did, when that is how
  // the deviation was recognised.
  std::optional<paging::CpuState> deviant_state;
  // A write that succeeded outside the architecture may have more than one explanation
  // (a TLB entry kept across a #PF, a walk under another rule): its data went to the
  // place of one of them, and the CPU does not say which. The places of the others.
  std::vector<std::pair<GuestPhys, unsigned>> other_places;
  bool other_kept = false;  // a kept TLB entry explains a write another explanation does too
  struct OtherAd {
    std::uint64_t address;
    unsigned level;
    bool leaf;
    std::uint64_t bits;
  };
  std::vector<OtherAd> other_ad;
  // The control state under which the walk being tried gave what the platform did.
  std::optional<paging::CpuState> matched_state;
  // Judgements under other control states while the model stands still (until
  // commit()): a deviation's walk is tried, then followed as an explanation, under the
  // same state (a list: what it gave out stays where it is, and an empty one costs
  // nothing).
  std::list<std::pair<paging::CpuState, judge::Judgement>> judged_under;
  const auto under_state = [&](const paging::CpuState& state) -> const judge::Judgement& {
    for (const auto& [s, u] : judged_under) {
      if (s == state) return u;
    }
    return judged_under.emplace_back(state, judge.judge_under(acc, state, keeps_after_fault))
        .second;
  };
  // The other vendor's rules (a known deviation's) decide as the access's own did when
  // no walk met an entry they treat apart: no deviation then, nor another explanation
  // (it cost every disagreeing access on AMD-flavoured TCG a second judgement, and
  // remembered walks under the other rules made later judgements longer). The access's own
  // judgement is `j` while still judge()'s and no TLB item a #PF dropped joins its walks.
  bool j_is_judged = true;
  const auto same_as_other_vendor = [&](const paging::CpuState& state) {
    auto other_vendor = judge.state_for(ac);
    other_vendor.features.amd = !other_vendor.features.amd;
    if (!(state == other_vendor)) return false;
    const bool plain = j_is_judged && !(keeps_after_fault && judge.covers_dropped(acc));
    return !judge::Judge::vendor_may_matter(plain ? j : under_state(judge.state_for(ac)),
                                            judge.state_for(ac));
  };
  // Does a walk under `state` give what the platform did: exactly, or as this platform
  // reports faults (a known deviation that changes only how a fault is reported, one that
  // needs no other walk: the platform walked under other rules and reported the result
  // its own way)?
  const auto matches_under = [&](const paging::CpuState& state) {
    if (same_as_other_vendor(state)) return false;
    const auto& under = under_state(state);
    // A read's value is the judge's (the bytes in the model, with what the walk's own
    // A/D updates may show), as for any access.
    bool same = judge.allows(under, acc, ob);
    if (!same && ob.kind == judge::Observed::Kind::Fault) {
      std::vector<paging::Outcome> outcomes;
      for (const auto& x : under.allowed) outcomes.push_back(x.outcome);
      const AccessCase reported{platform, a, r.observed, outcomes, false, state, nullptr, nullptr};
      same = std::any_of(deviations.begin(), deviations.end(),
                         [&](const AccessDeviation* d) { return d->matches(reported); });
    }
    if (same) matched_state = state;
    return same;
  };
  // Another explanation of the access than the one the model moves on with: a walk under
  // `state`. In case it was the one, the A/D bits it sets may be set (a write's data:
  // other_places).
  const auto other_walk = [&](const paging::CpuState& state) -> const judge::Judgement& {
    const auto& u = under_state(state);
    const auto& d = u.decided;
    const bool translated = d.kind == paging::Decision::Kind::Translation;
    const auto* pf = std::get_if<paging::PageFault>(&u.allowed.front().outcome);
    // The last entry read is a leaf when the walk translated or refused on rights.
    const bool reached_leaf = translated || (d.kind == paging::Decision::Kind::PageFault &&
                                             (d.error_code & paging::PfError::P) != 0 &&
                                             (d.error_code & paging::PfError::Rsvd) == 0);
    for (unsigned k = 0; k < d.entry_count; ++k) {
      const auto& e = d.entries[k];
      if (e.pdpte_register) continue;
      const bool last = k + 1 == d.entry_count;
      std::uint64_t bits = 0;
      if (translated) {
        bits = Pte::Accessed | (last && a.type == paging::AccessType::Write ? Pte::Dirty : 0);
      } else {
        if (pf != nullptr) {
          for (const auto& [entry, set] : pf->may_set_accessed) {
            if (entry == e.address) bits |= set;
          }
        }
        // A platform's known A/D deviation in a leaf that maps a page, as for any walk.
        if (last && paging::entry_rules(state, state.mode(), e.level, e.value).leaf) {
          bits |= ad_may_set[ad_index(leaf_size(e.level), true)];
        }
      }
      if (bits != 0) other_ad.push_back({e.address.value(), e.level, last && reached_leaf, bits});
    }
    return u;
  };
  // A success the architecture allows only through a translation it may still cache
  // (the fresh walk does not give it) may as well come from a fresh walk under a known
  // deviation's rules (one that acts under other control state, e.g. a reserved bit
  // ignored): the CPU does not say which. The states of such walks: the model moves on
  // with them too (where a write's data went, the A/D bits that walk sets, what the TLB
  // may hold now), and the access still agrees.
  std::vector<paging::CpuState> also_under;
  // The states of every explanation but the one that names the access: what such a walk
  // translated may be cached now as well (remember_under()).
  std::vector<paging::CpuState> other_states;
  // The same place as an allowed translation is no other place.
  const auto allowed_place = [&](const paging::Translation& t) {
    return std::any_of(j.allowed.begin(), j.allowed.end(), [&](const judge::Allowed& x) {
      const auto* y = std::get_if<paging::Translation>(&x.outcome);
      return y != nullptr && y->physical == t.physical;
    });
  };
  // The control states under which a known deviation's walk gives what the platform did
  // (kept TLB entries are widen_with_dropped()'s).
  const auto deviant_states = [&] {
    // std::ref: a std::function of a reference allocates nothing, and the lambdas
    // outlive the case.
    const AccessCase c{
        platform, a, r.observed, r.allowed, false, judge.state_for(ac), std::ref(matches_under),
        nullptr};
    std::vector<paging::CpuState> states;
    for (const auto* d : deviations) {
      if (d->keeps_tlb_entries_across_faults) continue;
      matched_state.reset();
      if (d->matches(c) && matched_state) states.push_back(*matched_state);
    }
    return states;
  };
  if (allowed && !a.checked_by_caller && ob.kind == judge::Observed::Kind::Ok) {
    if (!judge.matches(j.allowed.front(), acc, ob)) {
      for (const auto& state : deviant_states()) {
        also_under.push_back(state);
        other_states.push_back(state);
        other_walk(state);
      }
    } else if (a.type == paging::AccessType::Write && !j.decided_others.empty()) {
      // A write the fresh walk allows may as well have gone through a translation the
      // caches may hold that the architecture refuses but a known deviation lets through
      // (KVM's writable supervisor shadow entry of an earlier WP=0 write: SMAP skipped):
      // the CPU does not say which. Every such place is one of the write's (seed 1 case
      // 34060, 5-level, kvm_amd npt=0: the write went to the old page; case 34232 read
      // the fresh page's old value). Only where a cached walk was considered.
      for (const auto& state : deviant_states()) {
        for (const auto& x : under_state(state).allowed) {
          const auto* t = std::get_if<paging::Translation>(&x.outcome);
          if (t != nullptr && !allowed_place(*t)) add_places(x, a.size, other_places);
        }
      }
    }
  }
  // An access the architecture allows may as well have gone through a translation of
  // the tables before the host's writes, on a platform that does not see them (a known
  // deviation that accepts such a walk): the CPU does not say which. Then it may have
  // set no A/D bit in the tables as they are (the shadowed walk set its bits when it
  // was made: seed 1 case 33415 on kvm_amd npt=0, a PDPTE whose A the host cleared
  // stayed clear after a flush and a read), and every such walk's place is one of a
  // write's.
  bool old_tables_may_answer = false;
  if (allowed && !a.checked_by_caller && ob.kind == judge::Observed::Kind::Ok &&
      judge.has_foreign_writes()) {
    const AccessCase c{platform, a,      r.observed, r.allowed, true, judge.state_for(ac),
                       nullptr,  nullptr};
    const bool misses_host_writes =
        std::any_of(deviations.begin(), deviations.end(),
                    [&](const AccessDeviation* d) { return d->matches(c); });
    std::vector<paging::Walk> walks;
    if (misses_host_writes) (void)judge.walk_before_foreign_writes(acc, ac, ob, &walks);
    old_tables_may_answer = !walks.empty();
    if (a.type != paging::AccessType::Write) walks.clear();
    for (const auto& w : walks) {
      const auto* t = std::get_if<paging::Translation>(&w.outcome);
      if (t == nullptr || allowed_place(*t)) continue;
      // The bytes on the first page (4 KiB at least); a crossing write's second page is
      // another walk's.
      const auto in_page = paging::page_bytes(paging::PageSize::Size4K) -
                           (a.address.value() % paging::page_bytes(paging::PageSize::Size4K));
      other_places.emplace_back(t->physical,
                                static_cast<unsigned>(std::min<std::uint64_t>(a.size, in_page)));
    }
  }
  if (!allowed && !a.checked_by_caller) {
    // Judge::matches_dropped_by_fault(), through the judgement with the dropped items
    // that same_as_other_vendor() may need too: judged once. Only a platform that keeps
    // such items (keeps_after_fault: under_state() restores them) has a deviation that asks.
    const auto dropped = [&] {
      return judge.covers_dropped(acc) && judge.allows(under_state(judge.state_for(ac)), acc, ob);
    };
    const AccessCase c{platform,
                       a,
                       r.observed,
                       r.allowed,
                       before_foreign,
                       judge.state_for(ac),
                       std::ref(matches_under),
                       std::ref(dropped)};
    const bool wrote = a.type == paging::AccessType::Write && ob.kind == judge::Observed::Kind::Ok;
    // The first deviation that matches names the access; the others are explanations
    // too: the CPU does not say which it followed.
    for (const auto* dp : deviations) {
      const auto& d = *dp;
      matched_state.reset();
      if (!d.matches(c)) continue;
      if (deviation == nullptr) {
        deviation = &d;
        deviant_state = matched_state;
        continue;
      }
      if (matched_state) {
        other_states.push_back(*matched_state);
        const auto& u = other_walk(*matched_state);
        if (wrote) {
          for (const auto& x : u.allowed) add_places(x, a.size, other_places);
        }
      }
      // A kept TLB entry among the explanations: its places are added below.
      other_kept = other_kept || (wrote && d.keeps_tlb_entries_across_faults);
    }
    // What is printed gets its walks in words: the same judgement again (nothing moved
    // yet). A deviation a front-end only counts is not worth the words.
    if (explain == judge::Explain::No && (deviation == nullptr || explain_deviations)) {
      j_is_judged = false;
      judge.judge(acc, ac, judge::Explain::Yes, j);
    }
  }
  // On a platform that keeps TLB entries across a #PF, an access the architecture
  // allows may still have been answered from one: the model moves on with both.
  const std::size_t pure_allowed = j.allowed.size(), pure_others = j.decided_others.size();
  const bool pure_cache_may_answer = j.cache_may_answer;
  j_is_judged = false;
  if (allowed && keeps_after_fault) judge.widen_with_dropped(acc, ac, j);
  if (deviant_state) judge.widen_with_state(acc, *deviant_state, under_state(*deviant_state), j);
  for (const auto& state : also_under) judge.widen_with_state(acc, state, under_state(state), j);
  // A known deviation that did what the tables of before the host's writes say: the
  // model moves on with that translation too (a write's data went there).
  const bool foreign_deviant = deviation != nullptr && before_foreign && foreign;
  if (foreign_deviant) {
    judge::Allowed old(foreign->outcome, true);
    old.value_known = false;  // compared when the deviation was recognised
    j.allowed.push_back(std::move(old));
  }
  if (other_kept || (!other_places.empty() && keeps_after_fault)) {
    // The kept entries, as one explanation among others (commit() marks their places
    // when the first explanation was one of them; the engine learns them again).
    const auto kept = judge.dropped_places(acc, ac);
    other_places.insert(other_places.end(), kept.begin(), kept.end());
  }
  auto& v = scratch_verdict;
  judge.commit(acc, ac, a.write_value, j, &ob, v);
  // Words a write may have changed: read again from RAM at the next sync.
  const auto touched = [&](std::uint64_t pa, unsigned bytes) {
    for (auto w = pa & ~std::uint64_t{7}; w < pa + bytes; w += sizeof(std::uint64_t)) {
      resync.push_back(w);
      if (track_written) written.push_back(w);
    }
  };
  if (!other_places.empty()) {
    // Unknown: the places of every explanation, the one commit() wrote to among them.
    for (const auto& x : j.allowed) add_places(x, a.size, other_places);
    for (const auto& [at, bytes] : other_places) {
      if (at.value() + bytes > model.bytes().size()) continue;
      judge.data_unknown(at, bytes);
      touched(at.value(), bytes);
    }
  }
  // Matched through the deviation's walk: still outside the architecture.
  const bool agrees = v.agrees() && !deviant_state && !foreign_deviant;
  if (deviant_state) {
    judge.remember_under(acc, *deviant_state, ob.kind != judge::Observed::Kind::Ok);
  }
  for (const auto& state : other_states) {
    judge.remember_under(acc, state, ob.kind != judge::Observed::Kind::Ok);
  }
  if (a.type == paging::AccessType::Write) {
    // Where the data went is the CPU's choice among the allowed translations.
    std::vector<std::pair<GuestPhys, unsigned>> places;
    for (const auto& x : j.allowed) add_places(x, a.size, places);
    for (const auto& [at, bytes] : places) touched(at.value(), bytes);
  }
  for (const auto& e : v.entries) {
    auto& use = entries[e.address];
    use.leaf = e.leaf;
    use.level = e.level;
    use.last = index;
    use.may |= e.may_set;
    if (e.leaf && r.observed.status == ProbeStatus::Fault) {
      use.faulted_as_leaf = true;
      use.faulted_leaf_size = std::max(use.faulted_leaf_size, leaf_size(e.level));
    }
    // A leaf whose A/D bits the access may or may not set (a page-crossing access that
    // faulted on the other page) cannot be checked exactly either.
    if (!v.ad_predictable || old_tables_may_answer || (e.leaf && e.may_set != 0)) {
      use.uncertain = true;
    }
  }
  for (const auto& o : other_ad) {
    auto [it, fresh] = entries.try_emplace(o.address);
    if (fresh) {
      it->second.leaf = o.leaf;
      it->second.level = o.level;
      it->second.last = index;
    }
    it->second.may |= o.bits;
    judge.may_have_set(GuestPhys(o.address), o.bits);
  }
  // A platform's known A/D deviation may set bits in the leaf this access used.
  const bool faulted = r.observed.status == ProbeStatus::Fault;
  for (const auto& e : v.entries) {
    if (!e.maps_page) continue;
    const auto bits = ad_may_set[ad_index(leaf_size(e.level), faulted)];
    if (bits != 0) judge.may_have_set(GuestPhys(e.address), bits);
  }
  if (keep_agreeing_entries || !agrees) r.entries = v.entries;
  // What is kept and printed is the architecture's judgement alone.
  j.allowed.resize(pure_allowed);
  j.decided_others.resize(pure_others);
  j.others_under.resize(pure_others);
  j.cache_may_answer = pure_cache_may_answer;
  // A known deviation need not be explained in words when the front-end only counts it.
  const bool reported =
      !agrees && (deviation == nullptr || explain_deviations) && !a.checked_by_caller;
  std::string report;
  if (reported) report = disagreement_text(r, j, foreign);
  // Kept whole for front-ends that read it, and for what is printed: the scratch
  // judgement gives up its storage only then.
  if (keep_agreeing_judgements || reported) {
    r.judgement = std::make_shared<judge::Judgement>(std::move(j));
  }
  if (agrees) return;
  if (deviation != nullptr) {
    r.deviation = deviation->id;
    note_deviation(deviation->id, deviation->description);
  }
  r.agrees = false;
  r.report = report + r.report;
}

std::string Engine::Impl::disagreement_text(const CheckedResult& r, const judge::Judgement& j,
                                            const std::optional<paging::Walk>& foreign) const {
  const auto& ob = r.observed;
  std::string text =
      fmt::format("{}\nobserved: {}\nallowed:\n", r.summary(), observed_text(r.op, ob));
  const auto* a = std::get_if<OpAccess>(&r.op);
  const bool read = a != nullptr && a->type == paging::AccessType::Read;
  for (const auto& o : j.allowed) {
    text += fmt::format("  - {}", paging::describe(o.outcome));
    // A read that translated: the value the model holds there is part of the outcome.
    if (read && o.value_known && std::holds_alternative<paging::Translation>(o.outcome)) {
      text += fmt::format(" value={:#x}", o.value);
    }
    text += '\n';
  }
  text += fmt::format("walk (fresh, over the tables in memory):\n{}", walk_text(j.fresh));
  for (const auto& w : j.others) {
    text +=
        fmt::format("walk (over entries a translation cache may still hold):\n{}", walk_text(w));
  }
  if (foreign)
    text += fmt::format("walk (before the host's foreign writes):\n{}", walk_text(*foreign));
  if (ob.status == ProbeStatus::Fault)
    text += fmt::format("instruction at RIP {:#x}: {}\n", ob.rip, instruction_at(ob.rip));
  return text;
}

std::string Engine::Impl::instruction_at(std::uint64_t rip) const {
  auto s = state();
  paging::Access acc;
  acc.address = Linear(rip);
  acc.type = paging::AccessType::Fetch;
  acc.privilege = paging::Privilege::Supervisor;
  const auto w = paging::walk(model, s, acc);
  const auto* t = std::get_if<paging::Translation>(&w.outcome);
  if (t == nullptr) return "(not mapped for the oracle)";
  const auto pa = t->physical.value();
  const auto n = std::min<std::uint64_t>(16, Page - (pa % Page));
  if (pa + n > model.bytes().size()) return "(outside guest RAM)";
  const auto bits = long_mode(mode) ? CodeBits::Bits64 : CodeBits::Bits32;
  const auto insns = disassemble(std::span(model.bytes().data() + pa, n), rip, bits, 1);
  return insns.empty() ? "(undecodable)"
                       : fmt::format("{} [{}]", insns[0].text(), insns[0].hex_bytes());
}

}  // namespace pagelab::lab

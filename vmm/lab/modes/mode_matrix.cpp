// The matrix: every single control write the model lists, from every from-state,
// each in a fresh Lab so one case cannot disturb the next.
#include "pagelab/lab/modes/mode_matrix.hpp"
#include "pagelab/lab/report/json.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>

#include "modes/mode_matrix_runner.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/machine/probe_image.hpp"
#include "pagelab/paging/segment_descriptor.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {

using paging::ControlState;
using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::FarJumpOperand;
using paging::Mode;
using paging::Step;
using paging::Write;

namespace {

// CPUID bits the transition model needs beyond cpu_features.hpp (SDM vol. 2A, CPUID).
constexpr CpuidBit kFsgsbase{"FSGSBASE", 7, 0, CpuidRegister::Ebx, 0};
constexpr CpuidBit kCetSs{"CET_SS", 7, 0, CpuidRegister::Ecx, 7};
constexpr CpuidBit kPks{"PKS", 7, 0, CpuidRegister::Ecx, 31};
constexpr CpuidBit kVmx{"VMX", 1, 0, CpuidRegister::Ecx, 5};
constexpr CpuidBit kSmx{"SMX", 1, 0, CpuidRegister::Ecx, 6};
constexpr CpuidBit kXsave{"XSAVE", 1, 0, CpuidRegister::Ecx, 26};
constexpr CpuidBit kSyscall{"SYSCALL", 0x8000'0001, 0, CpuidRegister::Edx, 11};

// The far-jump operand the model needs for the probe's 64-bit code segment.
constexpr std::uint64_t kJumpTo64 = FarJumpOperand::make(true, false, PROBE_SEL_CODE64);

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

}  // namespace

paging::TransitionFeatures transition_features(const PlatformCpu& cpu) {
  paging::TransitionFeatures f;
  f.pae = cpu.has(cpuid::Pae);
  f.pse = cpu.has(cpuid::Pse);
  f.pge = cpu.has(cpuid::Pge);
  f.pcid = cpu.has(cpuid::Pcid);
  f.smep = cpu.has(cpuid::Smep);
  f.smap = cpu.has(cpuid::Smap);
  f.pku = cpu.has(cpuid::Pku);
  f.la57 = cpu.has(cpuid::La57);
  f.umip = cpu.has(cpuid::Umip);
  f.nx = cpu.has(cpuid::Nx);
  f.lm = cpu.has(cpuid::Lm);
  f.fsgsbase = cpu.has(kFsgsbase);
  f.syscall = cpu.has(kSyscall);
  f.vmx = cpu.has(kVmx);
  f.smx = cpu.has(kSmx);
  f.xsave = cpu.has(kXsave);
  f.cet = cpu.has(kCetSs);
  f.pks = cpu.has(kPks);
  f.maxphyaddr = cpu.maxphyaddr();
  return f;
}

PlatformCpu guest_cpuid(Lab& lab) {
  PlatformCpu cpu;
  cpu.entries = lab.cpuid_from_probe();
  return cpu;
}

std::vector<Mode> matrix_from_states() {
  return {Mode::Real,           Mode::Protected,     Mode::Paging32,       Mode::Pae,
          Mode::Compatibility4, Mode::Long64_4Level, Mode::Compatibility5, Mode::Long64_5Level};
}

namespace detail {

ControlState state_from(const ProbeReport& r, const kvm_sregs& sregs) {
  ControlState s;
  s.cr0 = r.cr0;
  s.cr3 = r.cr3;
  s.cr4 = r.cr4;
  s.efer = r.efer;
  s.cs_l = sregs.cs.l != 0;
  s.cs_d = sregs.cs.db != 0;
  return s;
}

Runner::Runner(const MatrixOptions& options) : options_(options) {
  fresh();
  backend_ = std::string(lab_->backend_name());
  // Deviations name the platform they were seen on: the KVM flavour, or the backend.
  // ("kvm_unknown" where no vendor module says which).
  if (backend_ == "kvm") {
    const auto flavour = kvm::detect_flavour().name;
    platform_ = flavour.starts_with("kvm_") ? flavour : "kvm_" + flavour;
  } else {
    platform_ = backend_;
  }
  cpu_ = guest_cpuid(*lab_);
  features_ = transition_features(cpu_);
  auto bits = reported_cpuid_bits();
  bits.insert(bits.end(), {kFsgsbase, kCetSs, kPks, kVmx, kSmx, kXsave, kSyscall});
  for (const auto& b : bits) {
    const bool table = lab_->cpu().has(b), guest = cpu_.has(b);
    if (table != guest) {
      notes_.push_back(fmt::format(
          "CPUID {}: the table given to KVM_SET_CPUID2 says {}, the guest's CPUID says {}; the "
          "model follows the guest",
          b.name, table ? "yes" : "no", guest ? "yes" : "no"));
    }
  }
  if (lab_->cpu().maxphyaddr() != cpu_.maxphyaddr()) {
    notes_.push_back(fmt::format("MAXPHYADDR: table {}, guest {}; the model follows the guest",
                                 lab_->cpu().maxphyaddr(), cpu_.maxphyaddr()));
  }
  // CPUID changes no state: the Lab is still as it booted.
}

void Runner::fresh() {
  bool reset = false;
  if (lab_) {
    try {
      lab_->reset();  // the same machine at power-on: no new VM or QEMU process
      reset = true;
      ++resets_;
    } catch (const std::exception&) {
      // A machine that cannot even reset is replaced below.
    }
  }
  if (!reset) {
    lab_.reset();
    lab_ = std::make_unique<Lab>(options_.lab);
    ++labs_started_;
  }
  ++generation_;
  dirty_ = false;
  cached_.reset();
}

ControlState Runner::state() {
  // Registers cost a QMP round trip on QEMU: ask once per probe command.
  if (cached_ && cached_->generation == generation_ && cached_->exits == lab_->exits()) {
    return cached_->state;
  }
  const auto s = state_from(lab_->last_report(), lab_->backend().registers().sregs);
  cached_ = CachedState{generation_, lab_->exits(), s};
  return s;
}

bool Runner::rewind() {
  if (!base_ || dirty_) return false;
  const auto& base = *base_;
  auto r = [this]() -> const ProbeReport& { return lab_->last_report(); };
  auto run = [this](std::uint32_t cmd, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0) {
    return lab_->command(cmd, arg0, arg1).ok();
  };
  try {
    // A 16-bit report with PE=1 comes from the far-jump landing pad, whose next command
    // runs in the 32-bit dispatcher, or from the real-mode loop after MOV CR0 set PE
    // (which answers 16 again): start afresh from there.
    if ((r().cr0 & Cr0::Pe) && r().code_bits == 16 &&
        (!run(PROBE_CMD_REPORT) || r().code_bits != 32)) {
      return false;
    }
    if (!(r().cr0 & Cr0::Pe) && (r().code_bits != 16 || !run(PROBE_CMD_ENTER_PROT))) {
      return false;
    }
    // SDM vol. 2 MOV CR0: clearing PG while CR4.PCIDE=1 raises #GP(0).
    if ((r().cr4 & Cr4::Pcide) && !run(PROBE_CMD_WRITE_CR4, r().cr4 & ~Cr4::Pcide)) return false;
    // 64-bit mode cannot clear PG (SDM 9.8.5.4): leave through compatibility mode.
    if (r().code_bits == 64 && !run(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE32)) return false;
    if ((r().cr0 & Cr0::Pg) && !run(PROBE_CMD_WRITE_CR0, r().cr0 & ~Cr0::Pg)) return false;
    if (r().efer != base.efer && !run(PROBE_CMD_WRMSR, Efer::Msr, base.efer)) return false;
    if (r().cr4 != base.cr4 && !run(PROBE_CMD_WRITE_CR4, base.cr4)) return false;
    if (r().cr3 != base.cr3 && !run(PROBE_CMD_WRITE_CR3, base.cr3)) return false;
    if (r().cr0 != base.cr0 && !run(PROBE_CMD_WRITE_CR0, base.cr0)) return false;
  } catch (const GuestStopped&) {
    return false;
  }
  return r().code_bits == 32 && r().cr0 == base.cr0 && r().cr3 == base.cr3 && r().cr4 == base.cr4 &&
         r().efer == base.efer;
}

void Runner::go(Mode mode, const std::optional<ControlState>& expect) {
  require_features(mode);  // no Lab, fresh or not, reaches a mode the CPU lacks
  if (rewind()) {
    try {
      reach(mode);
      if (!expect || state() == *expect) {
        ++rewinds_;
        return;
      }
    } catch (const Unreachable&) {
      // A fresh Lab decides: the platform may refuse this mode, or the rewind left
      // something behind.
    }
  }
  fresh();
  reach(mode);
}

Observation Runner::observe(const ProbeReport& report) {
  Observation o;
  o.executed = true;
  o.faulted = report.faulted();
  o.vector = report.vector;
  o.error_code = report.error_code;
  const auto sregs = lab_->backend().registers().sregs;
  o.after = state_from(report, sregs);
  cached_ = CachedState{generation_, lab_->exits(), o.after};
  if (!(o.after.cr0 & Cr0::Pe)) return o;
  // The probe runs with the CS/SS its GDT describes: decode the descriptors with the
  // model and compare with the vCPU's descriptor caches (D/B, L, DPL).
  const auto& image = probe_image();
  auto check = [&](std::string_view name, const kvm_segment& seg, std::uint16_t reported,
                   bool code) -> std::string {
    if (seg.selector != reported) {
      return fmt::format("{}: the probe reports selector {:#x}, the vCPU has {:#x}", name, reported,
                         seg.selector);
    }
    const paging::Selector sel{seg.selector};
    if (sel.ti() || (sel.index() + 1) * 8 > image.gdt_size) {
      return fmt::format("{} selector {:#x} is not in the probe's GDT", name, seg.selector);
    }
    const auto raw =
        lab_->ram().read<std::uint64_t>(paging::GuestPhys(image.gdt.value() + sel.index() * 8));
    const auto d = paging::decode_descriptor(raw);
    const bool l_ok = !code || d.l == (seg.l != 0);
    if (!l_ok || d.db != (seg.db != 0) || d.dpl != seg.dpl) {
      return fmt::format(
          "{} {:#x}: GDT descriptor {:#018x} decodes as D/B={} L={} DPL={}, the vCPU runs with "
          "D/B={} L={} DPL={}",
          name, seg.selector, raw, d.db ? 1 : 0, d.l ? 1 : 0, d.dpl, seg.db, seg.l, seg.dpl);
    }
    return {};
  };
  o.segment_problem = check("CS", sregs.cs, report.cs, true);
  if (o.segment_problem.empty()) o.segment_problem = check("SS", sregs.ss, report.ss, false);
  return o;
}

void Runner::finish(MatrixCase& c) {
  c.backend = backend_;
  c.platform = platform_;
  if (options_.before_classify) options_.before_classify(c);
  classify(c, options_.deviations);
  // After a write the platform took against the architecture, the next case gets a new
  // Lab unless a listed deviation says the probe went on running as written (only a
  // register holds an odd value, and rewind() rewrites them all): the probe may have
  // run astray and written anywhere. (A guest that stopped was replaced already.)
  if (c.observed.executed && c.observed.stopped.empty() && c.verdict != CaseVerdict::Agreed &&
      c.observed.after != c.before) {
    const auto* d =
        c.verdict == CaseVerdict::Deviation ? find_deviation(c, options_.deviations) : nullptr;
    if (d == nullptr || d->wrecks_probe) dirty_ = true;
  }
  if (options_.on_case) options_.on_case(c);
}

// The probe's code segment with the step's L and D (probe_abi.h).
Step with_probe_selector(Step step) {
  if (step.what != Write::FarJumpCs) return step;
  const bool l = step.value & FarJumpOperand::L;
  const bool d = step.value & FarJumpOperand::D;
  std::uint16_t selector = PROBE_SEL_CODE32;
  if (!l && !d) selector = PROBE_SEL_CODE16;
  if (l && !d) selector = PROBE_SEL_CODE64;
  if (l && d) selector = PROBE_SEL_CODE_L1D1;
  step.value = FarJumpOperand::make(l, d, selector);
  return step;
}

std::optional<std::string> unsafe_reason(const ControlState& before, const Step& step,
                                         const paging::Verdict& verdict) {
  const Mode mode = paging::mode_of(before);
  const bool lma = before.efer & Efer::Lma;
  if (!verdict.allowed) return std::nullopt;  // refused writes change nothing: safe to try
  if (mode == Mode::Real && step.what == Write::Cr0 && (verdict.after.cr0 & Cr0::Pg)) {
    return "would take the probe's own code away: in real mode CR3 holds no page table (the "
           "probe's identity maps are loaded only from protected mode)";
  }
  if (step.what == Write::Cr0 && (before.cr0 & Cr0::Pe) && !(verdict.after.cr0 & Cr0::Pe)) {
    return "would take the probe's own code away: clearing CR0.PE from 32-bit code leaves it "
           "running 32-bit code in real mode (it returns through its 16-bit segment: ENTER_REAL)";
  }
  if (step.what == Write::Cr4 && (before.cr0 & Cr0::Pg) && !lma &&
      ((before.cr4 ^ verdict.after.cr4) & Cr4::Pae)) {
    return "would take the probe's own code away: CR3 holds the other paging format's table, so "
           "switching between 32-bit and PAE paging in place unmaps the probe";
  }
  if (step.what == Write::Cr0 && !(before.cr0 & Cr0::Pg) && verdict.mode_after == Mode::Paging32 &&
      !(verdict.after.cr4 & Cr4::Pse)) {
    return "would take the probe's own code away: the 32-bit identity map uses 4 MiB pages, "
           "and with CR4.PSE=0 their PDEs are read as page-table pointers";
  }
  if (step.what == Write::Cr4 && mode == Mode::Paging32 && (before.cr4 & Cr4::Pse) &&
      !(verdict.after.cr4 & Cr4::Pse)) {
    return "would take the probe's own code away: the 32-bit identity map uses 4 MiB pages, "
           "which need CR4.PSE";
  }
  return std::nullopt;
}

namespace {

std::optional<std::array<std::uint64_t, 2>> probe_command(const Step& step) {
  switch (step.what) {
    case Write::Cr0:
      return std::array<std::uint64_t, 2>{PROBE_CMD_WRITE_CR0, step.value};
    case Write::Cr3:
      return std::array<std::uint64_t, 2>{PROBE_CMD_WRITE_CR3, step.value};
    case Write::Cr4:
      return std::array<std::uint64_t, 2>{PROBE_CMD_WRITE_CR4, step.value};
    case Write::Efer:
      return std::array<std::uint64_t, 2>{PROBE_CMD_WRMSR, step.value};
    case Write::FarJumpCs:
      return std::array<std::uint64_t, 2>{
          PROBE_CMD_JUMP_CS,
          (step.value & FarJumpOperand::Selector) >> FarJumpOperand::SelectorShift};
  }
  return std::nullopt;
}

}  // namespace

MatrixCase Runner::attempt(const Step& generic_step, const std::string& route,
                           std::optional<std::string> skip) {
  // The model needs the selector the probe really jumps to (the error code of #GP).
  const Step step = with_probe_selector(generic_step);
  MatrixCase c;
  c.route = route;
  c.before = state();
  c.from = paging::mode_of(c.before);
  c.step = step;
  c.expected = paging::evaluate(c.before, step.what, step.value, features_);
  if (!skip) skip = unsafe_reason(c.before, step, c.expected);
  if (!skip && (step.what == Write::Cr0 || step.what == Write::Cr4 || step.what == Write::Efer)) {
    auto taken = c.before;  // as if the platform took the write, whatever the model says
    (step.what == Write::Cr0   ? taken.cr0
     : step.what == Write::Cr4 ? taken.cr4
                               : taken.efer) = step.value;
    skip = platform_wedge(platform_, taken);
  }
  if (skip) {
    c.skip_reason = std::move(skip);
    finish(c);
    return c;
  }
  const auto cmd = probe_command(step);
  lab_->set_busy_watchdog(options_.case_busy_watchdog);
  try {
    const auto report = step.what == Write::Efer
                            ? lab_->command(PROBE_CMD_WRMSR, Efer::Msr, step.value)
                            : lab_->command(static_cast<std::uint32_t>((*cmd)[0]), (*cmd)[1]);
    if (report.status == ProbeStatus::BadCommand) {
      c.skip_reason =
          fmt::format("the probe has no command for this write in {}", paging::mode_name(c.from));
    } else {
      c.observed = observe(report);
    }
  } catch (const GuestStopped& e) {
    c.observed.executed = true;
    c.observed.after = c.before;
    c.observed.stopped = fmt::format("{}: {}", e.kind(), first_line(e.report()));
    fresh();
  }
  lab_->set_busy_watchdog(std::nullopt);
  finish(c);
  return c;
}

void Runner::setup(std::string_view what, std::uint32_t cmd, std::uint64_t arg0,
                   std::uint64_t arg1) {
  ProbeReport r;
  try {
    r = lab_->command(cmd, arg0, arg1);
  } catch (const GuestStopped& e) {
    fresh();
    throw Unreachable{fmt::format("{}: the guest stopped ({})", what, e.kind())};
  }
  if (!r.ok()) throw Unreachable{fmt::format("{} raised {}", what, r.outcome_text())};
}

void Runner::require_features(Mode mode) const {
  const bool five = mode == Mode::Compatibility5 || mode == Mode::Long64_5Level;
  if (five && !features_.la57) {
    throw Unreachable{"the CPU lacks LA57 (CPUID.(EAX=07H,ECX=0):ECX[16]=0)"};
  }
}

void Runner::reach(Mode mode) {
  const auto& tables = lab_->mode_tables();
  const bool five = mode == Mode::Compatibility5 || mode == Mode::Long64_5Level;
  require_features(mode);
  // Lab::last_report() is updated in place by each command; the registers of the
  // vCPU are not needed for these values.
  const auto& reported = lab_->last_report();
  const bool in_real = !(reported.cr0 & Cr0::Pe);
  if (mode == Mode::Real) {
    if (!in_real) setup("returning to real mode (ENTER_REAL)", PROBE_CMD_ENTER_REAL);
  } else if (in_real) {
    setup("entering protected mode (ENTER_PROT)", PROBE_CMD_ENTER_PROT);
    if (!base_) base_ = state();
  }
  switch (mode) {
    case Mode::Real:
      break;
    case Mode::Protected:
      setup("loading CR3 with the 32-bit identity map", PROBE_CMD_WRITE_CR3, tables.bits32.value());
      break;
    case Mode::Paging32:
      setup("loading CR3 with the 32-bit identity map", PROBE_CMD_WRITE_CR3, tables.bits32.value());
      if (features_.pse) setup("setting CR4.PSE", PROBE_CMD_WRITE_CR4, reported.cr4 | Cr4::Pse);
      setup("setting CR0.PG with CR4.PAE=0, EFER.LME=0 (32-bit paging)", PROBE_CMD_WRITE_CR0,
            reported.cr0 | Cr0::Pg);
      break;
    case Mode::Pae:
      setup("loading CR3 with the PAE identity map", PROBE_CMD_WRITE_CR3, tables.pae.value());
      setup("setting CR4.PAE", PROBE_CMD_WRITE_CR4, reported.cr4 | Cr4::Pae);
      setup("setting CR0.PG with CR4.PAE=1, EFER.LME=0 (PAE paging)", PROBE_CMD_WRITE_CR0,
            reported.cr0 | Cr0::Pg);
      break;
    default: {
      setup("loading CR3", PROBE_CMD_WRITE_CR3, (five ? tables.level5 : tables.level4).value());
      setup(five ? "setting CR4.PAE and CR4.LA57" : "setting CR4.PAE", PROBE_CMD_WRITE_CR4,
            reported.cr4 | Cr4::Pae | (five ? Cr4::La57 : 0));
      setup("setting EFER.LME", PROBE_CMD_WRMSR, Efer::Msr, reported.efer | Efer::Lme);
      setup("setting CR0.PG (IA-32e mode)", PROBE_CMD_WRITE_CR0, reported.cr0 | Cr0::Pg);
      if (mode == Mode::Long64_4Level || mode == Mode::Long64_5Level) {
        setup("far jump to the 64-bit code segment", PROBE_CMD_JUMP_CS, PROBE_SEL_CODE64);
      }
    }
  }
  const Mode now = paging::mode_of(state());
  if (now != mode) {
    throw Unreachable{fmt::format("the route to {} ended in {}", paging::mode_name(mode),
                                  paging::mode_name(now))};
  }
}

namespace {
// The state a from-state would have, when the platform does not let the probe reach
// it: the model's own path, so the steps from it can still be listed with verdicts.
ControlState nominal_state(Mode mode, const ModeTables& tables, const ControlState& protected_state,
                           const paging::TransitionFeatures& features) {
  ControlState s = protected_state;
  auto apply = [&](Write what, std::uint64_t value) {
    s = paging::evaluate(s, what, value, features).after;
  };
  const bool five = mode == Mode::Compatibility5 || mode == Mode::Long64_5Level;
  switch (mode) {
    case Mode::Paging32:
      apply(Write::Cr3, tables.bits32.value());
      if (features.pse) apply(Write::Cr4, s.cr4 | Cr4::Pse);
      apply(Write::Cr0, s.cr0 | Cr0::Pg);
      break;
    case Mode::Pae:
      apply(Write::Cr3, tables.pae.value());
      apply(Write::Cr4, s.cr4 | Cr4::Pae);
      apply(Write::Cr0, s.cr0 | Cr0::Pg);
      break;
    default:
      // LA57 is forced into the nominal state: without the feature the model would
      // refuse it, and the listing should show the 5-level from-state.
      apply(Write::Cr3, (five ? tables.level5 : tables.level4).value());
      s.cr4 |= Cr4::Pae | (five ? Cr4::La57 : 0);
      apply(Write::Efer, s.efer | Efer::Lme);
      apply(Write::Cr0, s.cr0 | Cr0::Pg);
      if (mode == Mode::Long64_4Level || mode == Mode::Long64_5Level) {
        apply(Write::FarJumpCs, kJumpTo64);
      }
  }
  return s;
}
}  // namespace

}  // namespace detail

CaseVerdict RouteResult::overall() const {
  // Worst first: a mismatch, then a deviation, then a route that could not finish.
  auto worst = CaseVerdict::Agreed;
  for (const auto& s : steps) {
    if (s.verdict == CaseVerdict::Mismatch) return CaseVerdict::Mismatch;
    if (s.verdict == CaseVerdict::Deviation) worst = CaseVerdict::Deviation;
    if (s.verdict == CaseVerdict::Skipped && worst == CaseVerdict::Agreed) {
      worst = CaseVerdict::Skipped;
    }
  }
  return worst;
}

Counts MatrixResult::counts() const {
  Counts n;
  auto add = [&](const MatrixCase& c) {
    ++n.total;
    switch (c.verdict) {
      case CaseVerdict::Agreed:
        ++n.agreed;
        break;
      case CaseVerdict::Deviation:
        ++n.deviations;
        ++n.by_deviation[c.deviation_id];
        break;
      case CaseVerdict::Mismatch:
        ++n.mismatches;
        break;
      case CaseVerdict::Skipped:
        ++n.skipped;
        ++n.skipped_by_reason[c.detail];
        break;
    }
  };
  for (const auto& c : cases) add(c);
  for (const auto& r : routes) {
    for (const auto& c : r.steps) add(c);
  }
  return n;
}

nlohmann::json MatrixResult::to_json() const {
  nlohmann::json j = report::document("modes");
  j["backend"] = backend;
  j["platform"] = platform;
  j["elapsed_ms"] = elapsed.count();
  j["labs_started"] = labs_started;
  j["resets"] = resets;
  j["rewinds"] = rewinds;
  j["notes"] = notes;
  j["cases"] = nlohmann::json::array();
  for (const auto& c : cases) j["cases"].push_back(c.to_json());
  j["routes"] = nlohmann::json::array();
  for (const auto& r : routes) {
    nlohmann::json rj{{"id", "route:" + r.name},
                      {"name", r.name},
                      {"description", r.description},
                      {"backend", backend},
                      {"verdict", json_verdict(r.overall())}};
    rj["steps"] = nlohmann::json::array();
    for (const auto& s : r.steps) rj["steps"].push_back(s.to_json());
    j["routes"].push_back(rj);
  }
  const auto n = counts();
  j["counts"] = {{"passed", n.agreed},
                 {"failed", n.mismatches},
                 {"skipped", n.skipped},
                 {"known-deviation", n.deviations}};
  j["total"] = n.total;
  j["known_deviations"] = n.by_deviation;
  // Reasons are prose: a list of {reason, count}, not keys.
  j["skipped_reasons"] = nlohmann::json::array();
  for (const auto& [reason, count] : n.skipped_by_reason) {
    j["skipped_reasons"].push_back({{"reason", reason}, {"count", count}});
  }
  j["deviations"] = nlohmann::json::array();
  for (const auto& d : known_deviations()) {
    j["deviations"].push_back({{"id", d.id},
                               {"platform", d.platform},
                               {"rule", d.rule},
                               {"description", d.description},
                               {"reproducer", d.reproducer}});
  }
  return j;
}

MatrixResult run_mode_matrix(const MatrixOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  MatrixResult result;
  detail::Runner runner(options);
  result.backend = runner.backend();
  result.platform = runner.platform();
  result.features = runner.features();
  result.notes = runner.notes();
  if (options.run_matrix) {
    // The protected-mode state every nominal from-state is built on.
    runner.reach(Mode::Protected);
    const ControlState protected_state = runner.state();
    for (const Mode from : matrix_from_states()) {
      if (options.only_from && *options.only_from != from) continue;
      std::optional<std::string> unreachable;
      ControlState from_state;
      try {
        runner.go(from);
        from_state = runner.state();
      } catch (const detail::Unreachable& u) {
        unreachable = u.reason;
        from_state = detail::nominal_state(from, runner.lab().mode_tables(), protected_state,
                                           runner.features());
      }
      // Every case starts from exactly from_state: the first as reached, the others by
      // rewinding the Lab (or in a fresh one) and reaching it again.
      bool at_from_state = true;
      for (const auto& generic : paging::all_single_steps(from_state, runner.features())) {
        const Step step = detail::with_probe_selector(generic);
        if (!options.step_filter.empty() &&
            step.label.find(options.step_filter) == std::string::npos) {
          continue;
        }
        if (unreachable) {
          MatrixCase c;
          c.before = from_state;
          c.from = from;
          c.step = step;
          c.expected = paging::evaluate(from_state, step.what, step.value, runner.features());
          c.skip_reason = fmt::format("from-state unreachable on this platform ({})", *unreachable);
          runner.finish(c);
          result.cases.push_back(std::move(c));
          continue;
        }
        if (!at_from_state) {
          try {
            runner.go(from, from_state);
          } catch (const detail::Unreachable& u) {
            // It was reachable a moment ago: say so rather than hide it.
            MatrixCase c;
            c.before = from_state;
            c.from = from;
            c.step = step;
            c.expected = paging::evaluate(from_state, step.what, step.value, runner.features());
            c.observed.executed = true;
            c.observed.after = from_state;
            c.observed.stopped = fmt::format("could not reach the from-state again: {}", u.reason);
            runner.finish(c);
            result.cases.push_back(std::move(c));
            continue;
          }
        }
        auto c = runner.attempt(step);
        at_from_state = !c.observed.executed;
        result.cases.push_back(std::move(c));
      }
    }
  }
  if (options.run_routes && !options.only_from && options.step_filter.empty()) {
    result.routes = detail::run_routes(runner);
  }
  result.labs_started = runner.labs_started();
  result.resets = runner.resets();
  result.rewinds = runner.rewinds();
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return result;
}

}  // namespace pagelab::lab

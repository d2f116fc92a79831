// The rules each control write is checked against. Each refusal names the SDM place
// that states it; the order of checks follows the MOV CR / WRMSR / JMP exception lists.
#include <fmt/core.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/segment_check.hpp"
#include "pagelab/paging/transition.hpp"

namespace pagelab::paging {

namespace {

// MOV to a control register outside 64-bit mode has a 32-bit operand: bits 63:32 of
// the value cannot be written (SDM vol. 2 MOV CR: "operand size is 32 bits").
constexpr std::uint64_t kLow32 = bits(0, 31);

// Writes that make PAE paging (re)load its PDPTEs when PAE paging is in use afterwards
// (SDM §4.4.1).
constexpr std::uint64_t kCr0PdpteTriggers = Cr0::Cd | Cr0::Nw | Cr0::Pg;
constexpr std::uint64_t kCr4PdpteTriggers = Cr4::Pae | Cr4::Pge | Cr4::Pse | Cr4::Smep;

std::string names_of(std::uint64_t mask, std::span<const RegisterBitName> table) {
  std::string out;
  for (unsigned n = 0; n < 64; ++n) {
    if (!(mask & bit(n))) continue;
    if (!out.empty()) out += ", ";
    std::string name = fmt::format("bit {}", n);
    for (const auto& b : table) {
      if (b.position == n) name = fmt::format("{} (bit {})", b.name, n);
    }
    out += name;
  }
  return out;
}

class Evaluation {
 public:
  Evaluation(const ControlState& before, const TransitionFeatures& features,
             const std::optional<std::array<std::uint64_t, 4>>& pdptes)
      : before_(before), features_(features), pdptes_(pdptes) {
    verdict_.after = before;
  }

  Verdict refuse(std::string rule, std::uint32_t error_code = 0) {
    verdict_.allowed = false;
    verdict_.vector = ExceptionVector::Gp;
    verdict_.error_code = error_code;
    verdict_.rule = std::move(rule);
    verdict_.after = before_;
    verdict_.mode_after = mode_of(before_);
    verdict_.loads_pdptes = false;
    return verdict_;
  }

  void note(std::string text) {
    if (!notes_.empty()) notes_ += "; ";
    notes_ += text;
  }

  // Completes an allowed write: PDPTE load (which may still refuse it), the mode after.
  Verdict accept(const ControlState& after, bool pdpte_trigger, std::string_view what) {
    if (mode_of(after) == Mode::Pae && pdpte_trigger) {
      verdict_.loads_pdptes = true;
      if (auto bad = bad_pdpte(after)) return refuse(*bad);
      note("SDM 4.4.1: PAE paging loads the four PDPTEs from CR3");
    }
    verdict_.allowed = true;
    verdict_.vector.reset();
    verdict_.error_code = 0;
    verdict_.after = after;
    verdict_.mode_after = mode_of(after);
    verdict_.rule = notes_.empty() ? fmt::format("{}: no rule refuses this write", what) : notes_;
    return verdict_;
  }

  Verdict cr0(std::uint64_t value) {
    const bool in64 = is_64bit(mode_of(before_));
    if (!in64) value &= kLow32;
    if (value & Cr0Layout::Upper) {
      return refuse("SDM 2.5: CR0 bits 63:32 are reserved; writing 1 raises #GP(0)");
    }
    if (value & Cr0Layout::Lower & ~Cr0Layout::Defined) {
      note("SDM MOV CR: reserved CR0 bits 31:0 stay clear, writes to them are ignored");
    }
    ControlState after = before_;
    after.cr0 = (value & Cr0Layout::Defined) | Cr0::Et;  // ET is hardwired to 1 (SDM 2.5)
    const std::uint64_t old = before_.cr0;
    const std::uint64_t now = after.cr0;
    if ((now & Cr0::Pg) && !(now & Cr0::Pe)) {
      return refuse("SDM MOV CR0: setting CR0.PG with CR0.PE=0 raises #GP(0)");
    }
    if ((now & Cr0::Nw) && !(now & Cr0::Cd)) {
      return refuse("SDM MOV CR0: CR0.NW=1 with CR0.CD=0 is invalid and raises #GP(0)");
    }
    if (!(now & Cr0::Wp) && (before_.cr4 & Cr4::Cet)) {
      return refuse("SDM 2.5: CR0.WP cannot be cleared while CR4.CET=1; #GP(0)");
    }
    const bool pg_on = !(old & Cr0::Pg) && (now & Cr0::Pg);
    const bool pg_off = (old & Cr0::Pg) && !(now & Cr0::Pg);
    if (pg_off) {
      if (in64) {
        return refuse(
            "SDM MOV CR0 (64-bit mode): clearing CR0.PG in 64-bit mode raises #GP(0); leave "
            "through compatibility mode first (SDM 9.8.5.4)");
      }
      if (before_.cr4 & Cr4::Pcide) {
        return refuse("SDM MOV CR0: clearing CR0.PG while CR4.PCIDE=1 raises #GP(0)");
      }
      if (before_.efer & Efer::Lma) {
        after.efer &= ~Efer::Lma;
        note(
            "SDM 9.8.5.4: clearing CR0.PG in compatibility mode deactivates IA-32e mode "
            "(EFER.LMA=0)");
      } else {
        note("CR0.PG=0: paging off");
      }
    }
    if (pg_on) {
      if (before_.efer & Efer::Lme) {
        if (!(before_.cr4 & Cr4::Pae)) {
          return refuse("SDM 4.1.2: setting CR0.PG with EFER.LME=1 and CR4.PAE=0 raises #GP(0)");
        }
        if (before_.cs_l) {
          return refuse(
              "SDM MOV CR0: activating IA-32e mode while the current CS has L=1 raises #GP(0)");
        }
        after.efer |= Efer::Lma;
        note(fmt::format(
            "SDM 9.8.5: setting CR0.PG with EFER.LME=1 and CR4.PAE=1 activates IA-32e mode "
            "(EFER.LMA=1), {}-level paging, compatibility mode until a far jump to CS.L=1",
            (before_.cr4 & Cr4::La57) ? 5 : 4));
      } else if (before_.cr4 & Cr4::Pae) {
        note("SDM 4.1.2: setting CR0.PG with CR4.PAE=1 and EFER.LME=0 enables PAE paging");
      } else {
        note("SDM 4.1.2: setting CR0.PG with CR4.PAE=0 and EFER.LME=0 enables 32-bit paging");
      }
    }
    if (!(old & Cr0::Pe) && (now & Cr0::Pe)) note("CR0.PE=1: protected mode");
    if ((old & Cr0::Pe) && !(now & Cr0::Pe)) note("CR0.PE=0: real-address mode");
    return accept(after, ((old ^ now) & kCr0PdpteTriggers) != 0, "MOV to CR0");
  }

  Verdict cr4(std::uint64_t value) {
    const Mode mode = mode_of(before_);
    if (!is_64bit(mode)) value &= kLow32;
    const std::uint64_t reserved = value & ~supported_cr4(features_);
    if (reserved) {
      return refuse(fmt::format(
          "SDM 2.5: CR4 {} reserved (not supported by this CPU); writing 1 raises #GP(0)",
          names_of(reserved, cr4_bit_names())));
    }
    const std::uint64_t old = before_.cr4;
    const bool lma = before_.efer & Efer::Lma;
    if (lma && !(value & Cr4::Pae)) {
      return refuse("SDM 4.1.2: CR4.PAE cannot be cleared while IA-32e mode is active; #GP(0)");
    }
    if (lma && ((old ^ value) & Cr4::La57)) {
      return refuse(
          "SDM 4.1.2 / MOV CR4: CR4.LA57 cannot be changed in IA-32e mode (LMA=1); #GP(0)");
    }
    if (!(old & Cr4::Pcide) && (value & Cr4::Pcide)) {
      if (!lma) {
        return refuse("SDM 4.10.1: CR4.PCIDE can be set only in IA-32e mode (EFER.LMA=1); #GP(0)");
      }
      if (before_.cr3 & Cr3::PcidMask) {
        return refuse("SDM MOV CR4: setting CR4.PCIDE while CR3[11:0] != 0 raises #GP(0)");
      }
    }
    if ((value & Cr4::Cet) && !(before_.cr0 & Cr0::Wp)) {
      return refuse("SDM 2.5: CR4.CET cannot be set while CR0.WP=0; #GP(0)");
    }
    ControlState after = before_;
    after.cr4 = value;
    if ((old ^ value) & Cr4::La57) {
      note(
          "SDM 4.1.2: CR4.LA57 changed outside IA-32e mode; it takes effect when IA-32e "
          "mode is next activated");
    }
    if ((before_.cr0 & Cr0::Pg) && !lma && ((old ^ value) & Cr4::Pae)) {
      note((value & Cr4::Pae) ? "SDM 4.1.2: setting CR4.PAE with paging on switches 32-bit "
                                "paging to PAE paging"
                              : "SDM 4.1.2: clearing CR4.PAE with paging on switches PAE "
                                "paging to 32-bit paging");
    }
    return accept(after, ((old ^ value) & kCr4PdpteTriggers) != 0, "MOV to CR4");
  }

  Verdict cr3(std::uint64_t value) {
    const Mode mode = mode_of(before_);
    if (!is_64bit(mode)) value &= kLow32;
    if (before_.cr4 & Cr4::Pcide) {
      if (value & Cr3::NoFlush) {
        note(
            "SDM 4.10.4.1: with CR4.PCIDE=1, CR3 bit 63 asks not to flush the PCID's "
            "translations and is not stored");
      }
      value &= ~Cr3::NoFlush;
    }
    if (before_.efer & Efer::Lma) {
      const std::uint64_t reserved = value & bits(features_.maxphyaddr, 63);
      if (reserved) {
        return refuse(fmt::format(
            "SDM MOV CR3 / 4.5: CR3 bits 63:{} (MAXPHYADDR and up) are reserved in IA-32e mode "
            "(bit 63 is the no-flush hint only with CR4.PCIDE=1); writing {:#x} raises #GP(0)",
            features_.maxphyaddr, reserved));
      }
    }
    ControlState after = before_;
    after.cr3 = value;
    return accept(after, true, "MOV to CR3");
  }

  Verdict efer(std::uint64_t value) {
    const std::uint64_t reserved = value & ~supported_efer(features_);
    if (reserved) {
      return refuse(fmt::format(
          "SDM WRMSR / vol. 4 table 2-2: IA32_EFER {} reserved (not supported by this CPU); "
          "#GP(0)",
          names_of(reserved, efer_bit_names())));
    }
    if ((before_.cr0 & Cr0::Pg) && ((before_.efer ^ value) & Efer::Lme)) {
      return refuse("SDM 4.1.2: EFER.LME cannot be changed while CR0.PG=1; WRMSR raises #GP(0)");
    }
    if ((before_.efer ^ value) & Efer::Lma) {
      note("SDM vol. 4 table 2-2: EFER.LMA is read-only; the written value is ignored");
    }
    ControlState after = before_;
    after.efer = (value & ~Efer::Lma) | (before_.efer & Efer::Lma);
    if (!(before_.efer & Efer::Lme) && (value & Efer::Lme)) {
      note("EFER.LME=1: IA-32e mode activates when CR0.PG is next set (SDM 9.8.5)");
    }
    return accept(after, false, "WRMSR IA32_EFER");
  }

  Verdict far_jump(std::uint64_t value) {
    const bool l = value & FarJumpOperand::L;
    const bool d = value & FarJumpOperand::D;
    const Selector selector{static_cast<std::uint16_t>((value & FarJumpOperand::Selector) >>
                                                       FarJumpOperand::SelectorShift)};
    ControlState after = before_;
    if (!(before_.cr0 & Cr0::Pe)) {
      note(
          "SDM JMP: in real-address mode a far jump loads only CS's selector and base; no "
          "descriptor is read, so L and D are unchanged");
      return accept(after, false, "far jump");
    }
    const bool lma = before_.efer & Efer::Lma;
    if (lma && l && d) {
      return refuse(
          "SDM JMP / 3.4.5: in IA-32e mode a code segment with L=1 and D=1 is invalid; "
          "#GP(selector)",
          selector.error_code());
    }
    after.cs_l = l;
    after.cs_d = d;
    if (lma) {
      note(l ? "SDM 3.4.5: in IA-32e mode CS.L=1 selects 64-bit mode"
             : fmt::format("SDM 3.4.5: in IA-32e mode CS.L=0 selects compatibility mode "
                           "({}-bit code)",
                           d ? 32 : 16));
    } else if (l) {
      note(
          "SDM 3.4.5: outside IA-32e mode the L bit is reserved and ignored for execution, "
          "but CS keeps it: activating IA-32e mode with this CS raises #GP (MOV CR0)");
    } else {
      note(fmt::format("far jump to {}-bit code", d ? 32 : 16));
    }
    return accept(after, false, "far jump");
  }

 private:
  std::optional<std::string> bad_pdpte(const ControlState& after) const {
    if (!pdptes_) return std::nullopt;
    const std::uint64_t reserved =
        PaePdpte::ReservedLow | PaePdpte::ReservedMid | bits(features_.maxphyaddr, 63);
    for (unsigned i = 0; i < PaePdpte::Count; ++i) {
      const std::uint64_t e = (*pdptes_)[i];
      if ((e & PaePdpte::Present) && (e & reserved)) {
        return fmt::format(
            "SDM 4.4.1: PDPTE {} = {:#018x} (PDPT at CR3 {:#x}) is present with reserved bits "
            "{:#x} set; loading the PDPTEs raises #GP(0)",
            i, e, after.cr3, e & reserved);
      }
    }
    return std::nullopt;
  }

  ControlState before_;
  TransitionFeatures features_;
  const std::optional<std::array<std::uint64_t, 4>>& pdptes_;
  Verdict verdict_;
  std::string notes_;
};

}  // namespace

std::uint64_t supported_cr4(const TransitionFeatures& f) {
  std::uint64_t mask = Cr4::Vme | Cr4::Pvi | Cr4::Tsd | Cr4::De | Cr4::Mce | Cr4::Pce |
                       Cr4::Osfxsr | Cr4::Osxmmexcpt;
  const std::pair<bool, std::uint64_t> optional[] = {
      {f.pse, Cr4::Pse},       {f.pae, Cr4::Pae},           {f.pge, Cr4::Pge},
      {f.umip, Cr4::Umip},     {f.la57, Cr4::La57},         {f.vmx, Cr4::Vmxe},
      {f.smx, Cr4::Smxe},      {f.fsgsbase, Cr4::Fsgsbase}, {f.pcid, Cr4::Pcide},
      {f.xsave, Cr4::Osxsave}, {f.smep, Cr4::Smep},         {f.smap, Cr4::Smap},
      {f.pku, Cr4::Pke},       {f.cet, Cr4::Cet},           {f.pks, Cr4::Pks},
  };
  for (const auto& [has, b] : optional) {
    if (has) mask |= b;
  }
  return mask;
}

std::uint64_t supported_efer(const TransitionFeatures& f) {
  std::uint64_t mask = 0;
  if (f.syscall) mask |= Efer::Sce;
  if (f.lm) mask |= Efer::Lme | Efer::Lma;
  if (f.nx) mask |= Efer::Nxe;
  return mask;
}

Verdict evaluate(const ControlState& before, Write what, std::uint64_t value,
                 const TransitionFeatures& features,
                 const std::optional<std::array<std::uint64_t, 4>>& pdptes) {
  if (mode_of(before) == Mode::Inconsistent) {
    throw std::invalid_argument(
        fmt::format("evaluate: the state before the write is not one a CPU can be in ({})",
                    inconsistency(before)));
  }
  if (features.maxphyaddr < 32 || features.maxphyaddr > 52) {
    throw std::invalid_argument(
        fmt::format("evaluate: MAXPHYADDR {} is outside 32..52", features.maxphyaddr));
  }
  Evaluation e(before, features, pdptes);
  switch (what) {
    case Write::Cr0:
      return e.cr0(value);
    case Write::Cr3:
      return e.cr3(value);
    case Write::Cr4:
      return e.cr4(value);
    case Write::Efer:
      return e.efer(value);
    case Write::FarJumpCs:
      return e.far_jump(value);
  }
  throw std::invalid_argument("evaluate: unknown write kind");
}

}  // namespace pagelab::paging

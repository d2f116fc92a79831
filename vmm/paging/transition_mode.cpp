#include <string>

#include "pagelab/paging/transition.hpp"

namespace pagelab::paging {

std::string inconsistency(const ControlState& s) {
  const bool pe = s.cr0 & Cr0::Pe;
  const bool pg = s.cr0 & Cr0::Pg;
  const bool pae = s.cr4 & Cr4::Pae;
  const bool lme = s.efer & Efer::Lme;
  const bool lma = s.efer & Efer::Lma;
  if (pg && !pe) return "CR0.PG=1 with CR0.PE=0";
  // LMA is LME AND PG (SDM §9.8.5); IA-32e paging needs PAE.
  if (lma && !(lme && pg)) return "EFER.LMA=1 without both EFER.LME and CR0.PG";
  if (!lma && lme && pg) return "EFER.LME=1 and CR0.PG=1 with EFER.LMA=0";
  if (lma && !pae) return "EFER.LMA=1 with CR4.PAE=0";
  if (lma && s.cs_l && s.cs_d) return "CS.L=1 and CS.D=1 in IA-32e mode";
  return {};
}

Mode mode_of(const ControlState& s) {
  if (!inconsistency(s).empty()) return Mode::Inconsistent;
  if (!(s.cr0 & Cr0::Pe)) return Mode::Real;
  if (!(s.cr0 & Cr0::Pg)) return Mode::Protected;
  if (s.efer & Efer::Lma) {
    const bool five = s.cr4 & Cr4::La57;
    if (s.cs_l) return five ? Mode::Long64_5Level : Mode::Long64_4Level;
    return five ? Mode::Compatibility5 : Mode::Compatibility4;
  }
  return (s.cr4 & Cr4::Pae) ? Mode::Pae : Mode::Paging32;
}

std::string_view mode_name(Mode mode) {
  switch (mode) {
    case Mode::Real:
      return "real mode";
    case Mode::Protected:
      return "protected mode, no paging";
    case Mode::Paging32:
      return "protected mode, 32-bit paging";
    case Mode::Pae:
      return "protected mode, PAE paging";
    case Mode::Compatibility4:
      return "IA-32e compatibility mode, 4-level paging";
    case Mode::Long64_4Level:
      return "64-bit mode, 4-level paging";
    case Mode::Compatibility5:
      return "IA-32e compatibility mode, 5-level paging";
    case Mode::Long64_5Level:
      return "64-bit mode, 5-level paging";
    case Mode::Inconsistent:
      return "inconsistent (no CPU can be in this state)";
  }
  return "?";
}

bool is_ia32e(Mode mode) {
  return mode == Mode::Compatibility4 || mode == Mode::Long64_4Level ||
         mode == Mode::Compatibility5 || mode == Mode::Long64_5Level;
}

bool is_64bit(Mode mode) {
  return mode == Mode::Long64_4Level || mode == Mode::Long64_5Level;
}

std::string_view to_string(Write what) {
  switch (what) {
    case Write::Cr0:
      return "CR0";
    case Write::Cr3:
      return "CR3";
    case Write::Cr4:
      return "CR4";
    case Write::Efer:
      return "EFER";
    case Write::FarJumpCs:
      return "far jump";
  }
  return "?";
}

}  // namespace pagelab::paging

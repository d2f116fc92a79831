#pragma once
// The mode-transition model: which operating/paging mode a control state is in, and
// what one control write (MOV to CR0/CR3/CR4, WRMSR to IA32_EFER, a far jump that
// reloads CS) does from a state — allowed with the state after, or refused with the
// exception and the SDM rule that refuses it (SDM vol. 3 §2.5, §4.1.1–4.1.2, §4.4.1,
// §4.10.1, §9.8.5; SDM vol. 2 "MOV—Move to/from Control Registers", "JMP", "WRMSR").
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/transition_bits.hpp"

namespace pagelab::paging {

// What the CPU supports, as far as control writes care. Independent of the walker's
// CpuFeatures (the lab converts from CPUID). VME, PVI, TSD, DE, MCE, PCE, OSFXSR and
// OSXMMEXCPT are assumed (every x86-64 CPU has them); CR4/EFER bits of features marked
// false here are reserved and writing 1 raises #GP(0).
struct TransitionFeatures {
  bool pae = true, pse = true, pge = true, pcid = false, smep = false, smap = false, pku = false,
       la57 = false, umip = false, nx = true, lm = true, fsgsbase = true;
  bool syscall = true, vmx = false, smx = false, xsave = false, cet = false, pks = false;
  unsigned maxphyaddr = 48;
};

struct ControlState {
  std::uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
  // The current code segment's L and D/B bits (from the descriptor cache).
  bool cs_l = false, cs_d = true;
  bool operator==(const ControlState&) const = default;
};

enum class Mode {
  Real,            // CR0.PE=0
  Protected,       // PE=1, PG=0 (segmentation only)
  Paging32,        // PG=1, PAE=0: 32-bit paging
  Pae,             // PG=1, PAE=1, LMA=0: PAE paging
  Compatibility4,  // LMA=1, CS.L=0, 4-level paging
  Long64_4Level,   // LMA=1, CS.L=1, 4-level paging
  Compatibility5,  // LMA=1, CS.L=0, LA57=1: 5-level paging
  Long64_5Level,   // LMA=1, CS.L=1, LA57=1
  Inconsistent,    // no CPU can be in this state (e.g. PG=1 with PE=0, LMA without PG)
};

Mode mode_of(const ControlState& state);
std::string_view mode_name(Mode mode);
bool is_ia32e(Mode mode);
bool is_64bit(Mode mode);
// Why mode_of() said Inconsistent (empty otherwise).
std::string inconsistency(const ControlState& state);

enum class Write {
  Cr0,
  Cr3,
  Cr4,
  Efer,       // WRMSR IA32_EFER
  FarJumpCs,  // value: FarJumpOperand::make(L, D, selector)
};
std::string_view to_string(Write what);  // "CR0", "CR3", "CR4", "EFER", "far jump"

struct Verdict {
  bool allowed = false;
  std::optional<unsigned> vector;  // 13 for #GP
  std::uint32_t error_code = 0;
  std::string rule;  // the SDM rule that decided, e.g. "SDM 4.1.2: ..."
  ControlState after;
  Mode mode_after = Mode::Real;
  // The write made PAE paging load the four PDPTE registers (SDM §4.4.1).
  bool loads_pdptes = false;
};

// `pdptes`: the four entries at the PDPT a PDPTE load would read (CR3 after the
// write); when given, a present entry with reserved bits set makes the write raise
// #GP(0). Throws std::invalid_argument if `before` is Inconsistent.
Verdict evaluate(const ControlState& before, Write what, std::uint64_t value,
                 const TransitionFeatures& features,
                 const std::optional<std::array<std::uint64_t, 4>>& pdptes = std::nullopt);

// CR4 bits `features` supports; every other bit is reserved.
std::uint64_t supported_cr4(const TransitionFeatures& features);
// EFER bits `features` supports (LMA included: it is read-only, not reserved).
std::uint64_t supported_efer(const TransitionFeatures& features);

struct Step {
  Write what;
  std::uint64_t value;
  std::string label;  // e.g. "CR0.PG 0->1", "EFER bit 1 (reserved)", "far jump L=1 D=0"
};

// Every single control write worth trying from `from`: each relevant CR0/CR4/EFER bit
// toggled, CR3 reloads (same root, a PCID, a bit above MAXPHYADDR, the no-flush bit),
// reserved-bit probes, and far jumps to code segments with each L/D combination.
// Always in the same order for the same input.
std::vector<Step> all_single_steps(const ControlState& from, const TransitionFeatures& features);

}  // namespace pagelab::paging

#pragma once
// Control-register bits the transition model and `decode cr0/cr4/efer` need beyond
// bits.hpp, and a name/meaning table per register (SDM vol. 3 §2.5, figure 2-7;
// SDM vol. 4 table 2-2 for IA32_EFER; AMD APM vol. 2 §3.1.7 for AMD-only EFER bits).
#include <cstdint>
#include <span>
#include <string_view>

#include "pagelab/paging/bits.hpp"

namespace pagelab::paging {

struct Cr0Layout {
  // Every defined CR0 bit; the rest of bits 31:0 are reserved and writes to them are
  // ignored, bits 63:32 are reserved and writing 1 raises #GP(0) (SDM §2.5).
  static constexpr std::uint64_t Defined = Cr0::Pe | Cr0::Mp | Cr0::Em | Cr0::Ts | Cr0::Et |
                                           Cr0::Ne | Cr0::Wp | Cr0::Am | Cr0::Nw | Cr0::Cd |
                                           Cr0::Pg;
  static constexpr std::uint64_t Upper = bits(32, 63);
  static constexpr std::uint64_t Lower = bits(0, 31);
};

// CR4 bits of features this model does not support; named so `decode cr4` can say what
// they are (SDM §2.5 figure 2-7).
struct Cr4More {
  static constexpr std::uint64_t Kl = bit(19);
  static constexpr std::uint64_t Uintr = bit(25);
  static constexpr std::uint64_t Lass = bit(27);
  static constexpr std::uint64_t LamSup = bit(28);
  static constexpr std::uint64_t Fred = bit(32);
  // A bit no Intel or AMD CPU defines; the reserved-bit probe of all_single_steps().
  static constexpr std::uint64_t ReservedProbe = bit(15);
};

struct EferMore {
  static constexpr std::uint64_t Svme = bit(12);   // AMD
  static constexpr std::uint64_t Lmsle = bit(13);  // AMD
  static constexpr std::uint64_t Ffxsr = bit(14);  // AMD
  static constexpr std::uint64_t Tce = bit(15);    // AMD
  static constexpr std::uint64_t ReservedProbe = bit(1);
};

struct Cr3More {
  // CR3 bits that hold no address: reserved with CR4.PCIDE=0 in IA-32e mode, the PCID
  // with CR4.PCIDE=1.
  static constexpr std::uint64_t LowFlags = bits(0, 11);
};

// The operand of a far jump in the transition model: which L and D/B bits the target
// code descriptor has, and its selector (for the #GP(selector) error code).
struct FarJumpOperand {
  static constexpr std::uint64_t D = bit(0);
  static constexpr std::uint64_t L = bit(1);
  static constexpr std::uint64_t Selector = bits(16, 31);
  static constexpr unsigned SelectorShift = 16;
  static constexpr std::uint64_t make(bool l, bool d, std::uint16_t selector) {
    return (l ? L : 0) | (d ? D : 0) | (std::uint64_t{selector} << SelectorShift);
  }
};

struct RegisterBitName {
  unsigned position;
  std::string_view name;
  std::string_view meaning;
};

std::span<const RegisterBitName> cr0_bit_names();
std::span<const RegisterBitName> cr4_bit_names();
std::span<const RegisterBitName> efer_bit_names();

}  // namespace pagelab::paging

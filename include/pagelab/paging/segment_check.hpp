#pragma once
// Segmentation checks: logical → linear address translation with limit and type checks
// (SDM vol. 3 §3.4.3, §5.3–5.5; §3.2.4 / §5.3.1 for 64-bit mode), and the checks made
// when a selector is loaded into a segment register (SDM vol. 2 "MOV—Move" /
// "POP" / "JMP" operation sections; SDM vol. 3 §5.6–5.8).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/segment_descriptor.hpp"

namespace pagelab::paging {

// Exception vectors raised by segmentation and control-register writes (SDM table 6-1).
struct ExceptionVector {
  static constexpr unsigned Np = 11;  // segment not present
  static constexpr unsigned Ss = 12;  // stack-segment fault
  static constexpr unsigned Gp = 13;  // general protection
};

enum class SegmentRegisterName { Es, Cs, Ss, Ds, Fs, Gs };
std::string_view to_string(SegmentRegisterName name);  // "ES", "CS", ...

enum class AccessKind { Read, Write, Execute };

// A segment register: the visible selector and the hidden descriptor cache. For FS/GS
// in 64-bit mode `descriptor.base` holds the full 64-bit base (from the MSRs).
struct SegmentRegister {
  SegmentRegisterName name = SegmentRegisterName::Ds;
  Selector selector;
  Descriptor descriptor;
};

struct SegmentFault {
  unsigned vector = ExceptionVector::Gp;
  std::uint32_t error_code = 0;
  std::string reason;  // the rule, with its SDM section
};

// Linear address of `size` bytes at `offset` through `seg`, or the fault. `long_mode`
// means 64-bit mode (IA-32e with CS.L=1): bases are 0 except FS/GS, no limit or type
// checks, and the address must be canonical in `linear_bits` (48, or 57 with LA57).
// Compatibility mode segments like protected mode: pass false. Outside 64-bit mode
// linear addresses are 32 bits and wrap. `cpl` is not consulted: privilege is checked
// when the selector is loaded (check_segment_load), not on each access.
std::variant<Linear, SegmentFault> logical_to_linear(const SegmentRegister& seg,
                                                     std::uint64_t offset, unsigned size,
                                                     AccessKind kind, unsigned cpl, bool long_mode,
                                                     unsigned linear_bits = 48);

// Protected-mode checks for loading `selector` (whose descriptor is `desc`) into `reg`
// at `cpl`: MOV/POP to SS/DS/ES/FS/GS, and a direct far JMP/CALL to a code segment for
// CS. `ia32e` is IA32_EFER.LMA; `sixty_four_bit` is 64-bit mode (a null SS is allowed
// there at CPL < 3 with RPL = CPL). Returns nothing when the load succeeds. Gates and
// TSS targets of a far jump are not modelled: throws std::invalid_argument.
std::optional<SegmentFault> check_segment_load(Selector selector, const Descriptor& desc,
                                               SegmentRegisterName reg, unsigned cpl,
                                               bool ia32e = false, bool sixty_four_bit = false);

}  // namespace pagelab::paging

#pragma once
// The page walk itself, written once (SDM vol. 3 ch. 4: §4.5 the walk, §4.6 access
// rights, §4.6.2 protection keys, §4.7 the #PF error code). It decides; a Tracer
// watches. decide() runs it with NoTracer, which costs nothing: no heap, no text, and
// no virtual call when the memory is a FlatMemory. walk() runs it with a tracer that
// records names, meanings and the reason of a fault.
//
// Tracer: any type with these members (see NoTracer):
//   step(level, index, const DecidedEntry&, bool leaf)  each entry read, top first
//   non_canonical(linear_width)                           before a #GP
//   not_present(level, index)                             before a #PF with P=0
//   reserved(level, index)                                before a #PF with RSVD=1
//   denied(RightDenial, KeyDenial, key, supervisor)       before a permission #PF
#include <cstdint>

#include "pagelab/paging/access.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/decision.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_rules.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/planted_bug.hpp"

namespace pagelab::paging {

// Which paging right (SDM §4.6.1) refused the access, if any.
enum class RightDenial : std::uint8_t {
  None,
  FetchExecuteDisabled,
  UserFetchSupervisor,
  Smep,
  UserReadSupervisor,
  SmapRead,
  SmapImplicitRead,
  UserWriteSupervisor,
  UserWriteReadOnly,
  SmapWrite,
  SmapImplicitWrite,
  SupervisorWriteWp,
};

// Which protection-key right (SDM §4.6.2) refused the access, if any. Independent of
// RightDenial: the #PF error code reports both (PK with W/U/I, SDM §4.7).
enum class KeyDenial : std::uint8_t { None, AccessDisabled, WriteDisabled };

struct NoTracer {
  void step(unsigned, unsigned, const DecidedEntry&, bool) {}
  void non_canonical(unsigned) {}
  void not_present(unsigned, unsigned) {}
  void reserved(unsigned, unsigned) {}
  void denied(RightDenial, KeyDenial, unsigned, bool) {}
};

// A 32-bit mode has no linear address above 4 GiB: not an architectural outcome but
// bad input, so std::invalid_argument.
[[noreturn]] void throw_wider_than_32_bits(std::uint64_t address, PagingMode mode);

namespace detail {

inline bool canonical(std::uint64_t address, unsigned width) {
  // Bits 63:width-1 must all equal bit width-1.
  const std::uint64_t upper = address & bits(width - 1, 63);
  return upper == 0 || upper == bits(width - 1, 63);
}

// The error-code bits that describe the access itself (SDM §4.7).
inline std::uint32_t access_error_bits(const CpuState& s, const Access& a, PagingMode mode) {
  std::uint32_t ec = 0;
  if (a.type == AccessType::Write) ec |= PfError::W;
  if (a.privilege == Privilege::User && !a.implicit) ec |= PfError::U;
  // I/D is reported only when fetches can fault for reasons other than U/S:
  // SMEP, or XD under PAE/4-level/5-level paging with EFER.NXE.
  const bool nx_active = mode != PagingMode::Bits32 && (s.efer & Efer::Nxe) != 0;
  if (a.type == AccessType::Fetch && (nx_active || (s.cr4 & Cr4::Smep) != 0)) ec |= PfError::I;
  return ec;
}

struct Rights {
  bool writable, user, executable;
};

// The paging rights of SDM §4.6.1, first refusal in a fixed order (the order only
// chooses the explanation: every refusal gives the same error code).
inline RightDenial right_denial(const CpuState& s, const Access& a, Rights r, PlantedBug bug) {
  const bool supervisor = a.privilege == Privilege::Supervisor || a.implicit;
  const bool user_to_supervisor = !supervisor && !r.user && bug != PlantedBug::IgnoreUserBit;
  const bool smap_blocks = bug != PlantedBug::IgnoreSmap && (s.cr4 & Cr4::Smap) != 0 && r.user &&
                           supervisor && (a.implicit || (s.rflags & Rflags::Ac) == 0);
  switch (a.type) {
    case AccessType::Fetch:
      if (!r.executable && bug != PlantedBug::IgnoreExecuteDisable) {
        return RightDenial::FetchExecuteDisabled;
      }
      if (user_to_supervisor) return RightDenial::UserFetchSupervisor;
      if (supervisor && r.user && (s.cr4 & Cr4::Smep) != 0) return RightDenial::Smep;
      return RightDenial::None;
    case AccessType::Read:
      if (user_to_supervisor) return RightDenial::UserReadSupervisor;
      if (smap_blocks) return a.implicit ? RightDenial::SmapImplicitRead : RightDenial::SmapRead;
      return RightDenial::None;
    case AccessType::Write:
      if (user_to_supervisor) return RightDenial::UserWriteSupervisor;
      if (!supervisor && !r.writable) return RightDenial::UserWriteReadOnly;
      if (smap_blocks) return a.implicit ? RightDenial::SmapImplicitWrite : RightDenial::SmapWrite;
      if (supervisor && !r.writable && (s.cr0 & Cr0::Wp) != 0 &&
          bug != PlantedBug::IgnoreWriteProtect) {
        return RightDenial::SupervisorWriteWp;
      }
      return RightDenial::None;
  }
  return RightDenial::None;
}

// Protection keys (SDM §4.6.2): 4/5-level paging with CR4.PKE, data accesses to
// user-mode addresses (U/S=1 at every level), whatever the access's own mode.
inline KeyDenial key_denial(const CpuState& s, const Access& a, PagingMode mode, bool user_page,
                            unsigned key) {
  const bool active = (mode == PagingMode::Level4 || mode == PagingMode::Level5) &&
                      (s.cr4 & Cr4::Pke) != 0 && user_page && a.type != AccessType::Fetch;
  if (!active) return KeyDenial::None;
  if ((s.pkru & Pkru::access_disable(key)) != 0) return KeyDenial::AccessDisabled;
  const bool supervisor = a.privilege == Privilege::Supervisor || a.implicit;
  if (a.type == AccessType::Write && (s.pkru & Pkru::write_disable(key)) != 0 &&
      (!supervisor || (s.cr0 & Cr0::Wp) != 0)) {
    return KeyDenial::WriteDisabled;
  }
  return KeyDenial::None;
}

}  // namespace detail

template <PagingMemory Memory, class Tracer>
Decision walk_core(const Memory& memory, const CpuState& state, const Access& access,
                   Tracer& tracer) {
  Decision d;
  d.address = access.address;
  d.write = access.type == AccessType::Write;
  const PagingMode mode = state.mode();
  const std::uint64_t va = access.address.value();
  d.linear_width = linear_width(mode);

  if (mode == PagingMode::None || mode == PagingMode::Bits32 || mode == PagingMode::Pae) {
    if (va >= bit(d.linear_width)) throw_wider_than_32_bits(va, mode);
  } else if (!detail::canonical(va, d.linear_width)) {
    d.kind = Decision::Kind::GeneralProtection;
    tracer.non_canonical(d.linear_width);
    return d;
  }

  const std::uint64_t page4k = bits(0, Pte::FrameShift - 1);
  if (mode == PagingMode::None) {
    d.physical = GuestPhys(va);
    d.page_base = Linear(va & ~page4k);
    d.frame = GuestPhys(va & ~page4k);
    return d;
  }

  const std::uint32_t access_bits = detail::access_error_bits(state, access, mode);
  const PlantedBug bug = planted_bug();
  const bool nxe = mode != PagingMode::Bits32 && (state.efer & Efer::Nxe) != 0;
  const unsigned entry_size = entry_bytes(mode);
  std::uint64_t table = state.root().value();
  EntryRules leaf;
  for (unsigned level = top_level(mode); level >= 1; --level) {
    const LevelBits lb = level_bits_unchecked(mode, level);
    const auto index = static_cast<unsigned>((va >> lb.lo) & (bit(lb.bits) - 1));
    DecidedEntry& e = d.entries[d.entry_count++];
    e.level = level;
    e.pdpte_register = mode == PagingMode::Pae && level == 3;
    e.address = GuestPhys(table + std::uint64_t{index} * entry_size);
    e.value = e.pdpte_register ? state.pdptes[index] : memory.read(e.address, entry_size);
    const EntryRules r = entry_rules(state, mode, level, e.value);
    const bool reserved = r.violated(e.value) && bug != PlantedBug::IgnoreReservedBits;
    tracer.step(level, index, e, r.leaf && r.present && !reserved);
    if (!r.present) {
      d.kind = Decision::Kind::PageFault;
      d.error_code = access_bits;
      tracer.not_present(level, index);
      return d;
    }
    if (reserved) {
      d.kind = Decision::Kind::PageFault;
      d.error_code = access_bits | PfError::P | PfError::Rsvd;
      tracer.reserved(level, index);
      return d;
    }
    if (!e.pdpte_register) {
      // PAE PDPTEs have no R/W, U/S, XD or A.
      d.writable = d.writable && (e.value & Pte::Writable) != 0;
      d.user = d.user && (e.value & Pte::User) != 0;
      d.executable = d.executable && !(nxe && (e.value & Pte::NoExecute) != 0);
    }
    if (r.leaf) {
      leaf = r;
      break;
    }
    table = r.address.value();
  }

  const RightDenial right =
      detail::right_denial(state, access, {d.writable, d.user, d.executable}, bug);
  const KeyDenial key = detail::key_denial(state, access, mode, d.user, leaf.protection_key);
  d.protection_key = leaf.protection_key;
  if (right != RightDenial::None || key != KeyDenial::None) {
    d.kind = Decision::Kind::PageFault;
    d.error_code = access_bits | PfError::P | (key != KeyDenial::None ? PfError::Pk : 0);
    tracer.denied(right, key, leaf.protection_key,
                  access.privilege == Privilege::Supervisor || access.implicit);
    return d;
  }

  const std::uint64_t page_mask = page_bytes(leaf.page_size) - 1;
  d.page_size = leaf.page_size;
  d.frame = leaf.address;
  d.physical = leaf.address + (va & page_mask);
  d.page_base = Linear(va & ~page_mask);
  d.global = (d.entries[d.entry_count - 1].value & Pte::Global) != 0 && (state.cr4 & Cr4::Pge) != 0;
  return d;
}

}  // namespace pagelab::paging

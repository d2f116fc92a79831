#pragma once
// The architectural rules of one paging-structure entry, without any text: present,
// leaf or not, page size, the address it holds, its protection key and which bit fields
// are reserved (SDM vol. 3 tables 4-4..4-20, §4.6.1). Inline and allocation-free because
// the decision walk (walk_core.hpp) applies them on every level of every access;
// decode_entry() (entry_format.hpp) builds its names and reasons on top of them, so the
// rules exist once.
#include <algorithm>
#include <array>
#include <cstdint>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::paging {

// Which rule makes a field reserved; entry_format.cpp words each one.
enum class ReservedRule : std::uint8_t {
  Above32Bits,           // bits 63:32 of a 32-bit entry
  Pse36Limit,            // 4 MiB PDE bits above the PSE-36 physical width
  PdpteLow,              // PAE PDPTE bits 2:1
  PdpteMid,              // PAE PDPTE bits 8:5
  PdpteAboveMaxphyaddr,  // PAE PDPTE bits 63:MAXPHYADDR
  AboveMaxphyaddr,       // address bits above MAXPHYADDR (64-bit entries)
  XdWithoutNxe,          // bit 63 while EFER.NXE=0
  PsAtTop,               // PS in a PML4E or PML5E
  Bit8AtTopOnAmd,        // bit 8 in a PML4E or PML5E, on AMD
  PsWithout1G,           // PS in a PDPTE on a CPU without 1 GiB pages
  LargeFrameAlignment,   // frame bits below the page size of a huge leaf
};

// Trivially constructible on purpose: EntryRules is made on every level of every walk,
// and zeroing its list (only the first reserved_count are ever read) cost more than the
// rest of the level.
struct ReservedMask {
  std::uint64_t mask;
  ReservedRule rule;
};

struct EntryRules {
  static constexpr unsigned MaxReserved = 4;
  bool present = false;
  bool leaf = false;  // maps a page (only meaningful when present)
  PageSize page_size = PageSize::Size4K;
  GuestPhys address;  // the next table, or the page frame when leaf
  unsigned protection_key = 0;
  // In the order decode_entry lists them; only the first reserved_count are set.
  std::array<ReservedMask, MaxReserved> reserved;
  unsigned reserved_count = 0;
  std::uint64_t reserved_bits = 0;  // union of the masks

  [[nodiscard]] bool violated(std::uint64_t value) const { return (value & reserved_bits) != 0; }
  void add(std::uint64_t mask, ReservedRule rule) {
    if (mask == 0) return;
    reserved[reserved_count++] = {mask, rule};
    reserved_bits |= mask;
  }
};

inline unsigned effective_maxphyaddr(const CpuFeatures& f) {
  return std::min(f.maxphyaddr, Pte::MaxPhysBits);
}

// PSE-36 (SDM table 4-4): a 4 MiB PDE holds physical bits (M-1):32 with
// M = min(MAXPHYADDR, 40), or none without PSE-36.
inline unsigned pse36_width(const CpuFeatures& f) {
  return f.pse36 ? std::min(effective_maxphyaddr(f), Pte32::Pse36MaxPhysBits)
                 : unsigned{Pte32::Pse36PhysShift};
}

namespace detail {

constexpr unsigned LargePatBit = 12;
constexpr std::uint64_t Bits32Upper = bits(32, 63);

[[gnu::always_inline]] inline void entry_rules_32bit(EntryRules& r, const CpuState& s,
                                                     unsigned level, std::uint64_t value) {
  if ((value & Bits32Upper) != 0) r.add(Bits32Upper, ReservedRule::Above32Bits);
  if (level == 2 && (s.cr4 & Cr4::Pse) != 0 && (value & Pte32::PageSize) != 0) {
    r.leaf = true;
    r.page_size = PageSize::Size4M;
    const unsigned high_bits = pse36_width(s.features) - Pte32::Pse36PhysShift;
    std::uint64_t frame = value & Pte32::Frame4M;
    if (high_bits > 0) {
      frame |= ((value >> Pte32::Pse36Lo) & (bit(high_bits) - 1)) << Pte32::Pse36PhysShift;
    }
    r.address = GuestPhys(frame);
    r.add(bits(Pte32::Pse36Lo + high_bits, Pte32::Pse36ReservedHi), ReservedRule::Pse36Limit);
    return;
  }
  r.leaf = level == 1;
  r.address = GuestPhys(value & Pte32::Frame4K);
}

[[gnu::always_inline]] inline void entry_rules_pae_pdpte(EntryRules& r, const CpuState& s,
                                                         std::uint64_t value) {
  const unsigned m = effective_maxphyaddr(s.features);
  r.add(PaePdpte::ReservedLow, ReservedRule::PdpteLow);
  r.add(PaePdpte::ReservedMid, ReservedRule::PdpteMid);
  r.add(bits(m, 63), ReservedRule::PdpteAboveMaxphyaddr);
  r.address = GuestPhys(value & bits(0, m - 1) & ~bits(0, Pte::FrameShift - 1));
}

[[gnu::always_inline]] inline void entry_rules_64bit(EntryRules& r, const CpuState& s,
                                                     PagingMode mode, unsigned level,
                                                     std::uint64_t value) {
  const unsigned m = effective_maxphyaddr(s.features);
  const std::uint64_t phys = bits(0, m - 1);
  const bool pae = mode == PagingMode::Pae;
  const bool ps = (value & Pte::PageSize) != 0;
  // Above MAXPHYADDR: up to bit 62 in PAE entries, up to 51 in 4/5-level entries
  // (52..62 are ignored there, or the protection key on leaves).
  const unsigned high = pae ? 62 : Pte::MaxPhysBits - 1;
  if (m <= high) r.add(bits(m, high), ReservedRule::AboveMaxphyaddr);
  if ((s.efer & Efer::Nxe) == 0) r.add(Pte::NoExecute, ReservedRule::XdWithoutNxe);

  if (!pae && (level == top_level(mode) || level == 4)) {
    r.add(Pte::PageSize, ReservedRule::PsAtTop);
    // G has no meaning above the leaves; AMD reserves the bit there, Intel ignores it.
    if (s.features.amd) r.add(Pte::Global, ReservedRule::Bit8AtTopOnAmd);
  } else if (level == 3 && ps && !s.features.page1g) {
    r.add(Pte::PageSize, ReservedRule::PsWithout1G);
  } else if (level == 1 || ((level == 2 || level == 3) && ps)) {
    r.leaf = true;
    r.page_size = level == 1 ? PageSize::Size4K : level == 2 ? PageSize::Size2M : PageSize::Size1G;
    if (level != 1) {
      const unsigned frame_lo = offset_bits(r.page_size);
      r.add(bits(LargePatBit + 1, frame_lo - 1), ReservedRule::LargeFrameAlignment);
      r.address = GuestPhys(value & phys & ~bits(0, frame_lo - 1));
    }
    if (!pae && (s.cr4 & Cr4::Pke) != 0) {
      r.protection_key =
          static_cast<unsigned>((value & Pte::ProtectionKey) >> Pte::ProtectionKeyShift);
    }
  }
  if (!r.leaf || level == 1) r.address = GuestPhys(value & phys & ~bits(0, Pte::FrameShift - 1));
}

}  // namespace detail

// `mode` must be s.mode() and `level` must exist in it (the caller checked).
[[gnu::always_inline]] inline EntryRules entry_rules(const CpuState& s, PagingMode mode,
                                                     unsigned level, std::uint64_t value) {
  EntryRules r;
  r.present = (value & Pte::Present) != 0;
  if (mode == PagingMode::Bits32) {
    detail::entry_rules_32bit(r, s, level, value);
  } else if (mode == PagingMode::Pae && level == 3) {
    detail::entry_rules_pae_pdpte(r, s, value);
  } else {
    detail::entry_rules_64bit(r, s, mode, level, value);
  }
  return r;
}

}  // namespace pagelab::paging

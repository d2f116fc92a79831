#include "pagelab/paging/entry_format.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::paging {

namespace {

constexpr unsigned XdPosition = 63;
constexpr unsigned PatLargePosition = 12;
constexpr unsigned PsPosition = 7;

unsigned maxphyaddr(const CpuFeatures& f) {
  return std::min(f.maxphyaddr, Pte::MaxPhysBits);
}

void add_reserved(std::vector<ReservedField>& out, std::uint64_t mask, std::string reason) {
  if (mask != 0) out.push_back({mask, std::move(reason)});
}

void add_flag(EntryDecoding& d, const char* name, unsigned position) {
  d.flags.push_back({name, position, (d.value & bit(position)) != 0});
}

// The low flags every entry except a PAE PDPTE has.
void add_common_flags(EntryDecoding& d) {
  add_flag(d, "P", 0);
  add_flag(d, "RW", 1);
  add_flag(d, "US", 2);
  add_flag(d, "PWT", 3);
  add_flag(d, "PCD", 4);
  add_flag(d, "A", 5);
}

// Leaf flags: D, G, and PAT at bit 7 (4 KiB) or bit 12 (huge, where bit 7 is PS).
void add_leaf_flags(EntryDecoding& d, bool huge) {
  add_flag(d, "D", 6);
  if (huge) add_flag(d, "PS", PsPosition);
  add_flag(d, "PAT", huge ? PatLargePosition : PsPosition);
  add_flag(d, "G", 8);
}

void decode_32bit(EntryDecoding& d, const CpuState& s) {
  const CpuFeatures& f = s.features;
  add_reserved(d.reserved, d.value & bits(32, 63) ? bits(32, 63) : 0,
               "bits 63:32 do not exist in a 32-bit entry");
  add_common_flags(d);
  const bool pse = (s.cr4 & Cr4::Pse) != 0;
  if (d.level == 2 && pse && (d.value & Pte32::PageSize) != 0) {
    d.leaf = true;
    d.page_size = PageSize::Size4M;
    add_leaf_flags(d, true);
    // PSE-36 (SDM table 4-4): M = min(MAXPHYADDR, 40) with PSE-36, else 32.
    const unsigned m = f.pse36 ? std::min(maxphyaddr(f), Pte32::Pse36MaxPhysBits)
                               : unsigned{Pte32::Pse36PhysShift};
    const unsigned high_bits = m - Pte32::Pse36PhysShift;
    std::uint64_t frame = d.value & Pte32::Frame4M;
    if (high_bits > 0) {
      const std::uint64_t high = (d.value >> Pte32::Pse36Lo) & (bit(high_bits) - 1);
      frame |= high << Pte32::Pse36PhysShift;
    }
    d.address = GuestPhys(frame);
    add_reserved(d.reserved, bits(Pte32::Pse36Lo + high_bits, Pte32::Pse36ReservedHi),
                 f.pse36 ? fmt::format("bits {}:{} of a 4 MiB PDE (PSE-36 limit, M={})",
                                       Pte32::Pse36ReservedHi, Pte32::Pse36Lo + high_bits, m)
                         : "bits 21:13 of a 4 MiB PDE (no PSE-36)");
    return;
  }
  if (d.level == 2) {
    add_flag(d, "PS", PsPosition);
  } else {
    d.leaf = true;
    add_leaf_flags(d, false);
  }
  d.address = GuestPhys(d.value & Pte32::Frame4K);
}

void decode_pae_pdpte(EntryDecoding& d, const CpuState& s) {
  add_flag(d, "P", 0);
  add_flag(d, "PWT", 3);
  add_flag(d, "PCD", 4);
  add_reserved(d.reserved, PaePdpte::ReservedLow, "bits 2:1 of a PAE PDPTE");
  add_reserved(d.reserved, PaePdpte::ReservedMid, "bits 8:5 of a PAE PDPTE");
  add_reserved(d.reserved, bits(maxphyaddr(s.features), 63),
               fmt::format("bits 63:{} of a PAE PDPTE (above MAXPHYADDR)", maxphyaddr(s.features)));
  d.address = GuestPhys(d.value & phys_mask(s.features) & ~bits(0, 11));
}

void decode_64bit(EntryDecoding& d, const CpuState& s) {
  const CpuFeatures& f = s.features;
  const unsigned m = maxphyaddr(f);
  const bool pae = d.mode == PagingMode::Pae;
  const bool nxe = (s.efer & Efer::Nxe) != 0;
  const bool ps = (d.value & Pte::PageSize) != 0;
  const unsigned top = top_level(d.mode);
  add_common_flags(d);

  // Above MAXPHYADDR: up to bit 62 in PAE entries, up to 51 in 4/5-level entries
  // (52..62 are ignored there, or the protection key on leaves).
  const unsigned high = pae ? 62 : Pte::MaxPhysBits - 1;
  add_reserved(d.reserved, bits(m, high),
               fmt::format("bits {}:{} (above MAXPHYADDR {})", high, m, m));
  if (!nxe) add_reserved(d.reserved, Pte::NoExecute, "bit 63 (XD) while EFER.NXE=0");

  if (!pae && (d.level == top || d.level == 4)) {
    add_reserved(d.reserved, Pte::PageSize,
                 fmt::format("bit 7 (PS) of a {}E", intel_level_name(d.level)));
  } else if (d.level == 3 && ps && !f.page1g) {
    add_flag(d, "PS", PsPosition);
    add_reserved(d.reserved, Pte::PageSize, "bit 7 (PS) of a PDPTE: no 1 GiB pages on this CPU");
  } else if (d.level == 1 || ((d.level == 2 || d.level == 3) && ps)) {
    d.leaf = true;
    d.page_size = d.level == 1   ? PageSize::Size4K
                  : d.level == 2 ? PageSize::Size2M
                                 : PageSize::Size1G;
    const bool huge = d.level != 1;
    add_leaf_flags(d, huge);
    if (huge) {
      const unsigned frame_lo = offset_bits(d.page_size);
      add_reserved(
          d.reserved, bits(PatLargePosition + 1, frame_lo - 1),
          fmt::format("bits {}:{} of a {} leaf (frame must be {}-aligned)", frame_lo - 1,
                      PatLargePosition + 1, to_string(d.page_size), to_string(d.page_size)));
      d.address = GuestPhys(d.value & phys_mask(f) & ~bits(0, frame_lo - 1));
    }
    if (!pae && (s.cr4 & Cr4::Pke) != 0) {
      d.protection_key =
          static_cast<unsigned>((d.value & Pte::ProtectionKey) >> Pte::ProtectionKeyShift);
    }
  } else {
    add_flag(d, "PS", PsPosition);
  }
  if (!d.leaf || d.level == 1) d.address = GuestPhys(d.value & phys_mask(f) & ~bits(0, 11));
  if (nxe) add_flag(d, "XD", XdPosition);
}

std::string describe_meaning(const EntryDecoding& d) {
  if (!d.present) return "not present";
  if (!d.violations.empty()) {
    std::string out = "reserved bits set:";
    for (const auto& v : d.violations) out += " " + v.reason + ";";
    out.pop_back();
    return out;
  }
  if (d.leaf) {
    return fmt::format("maps a {} page at {:#x}", to_string(d.page_size), d.address.value());
  }
  return fmt::format("points to a {} at {:#x}", intel_level_name(d.level - 1), d.address.value());
}

}  // namespace

std::uint64_t phys_mask(const CpuFeatures& features) {
  return bits(0, maxphyaddr(features) - 1);
}

EntryDecoding decode_entry(const CpuState& state, unsigned level, std::uint64_t value) {
  EntryDecoding d;
  d.mode = state.mode();
  if (!has_level(d.mode, level)) {
    throw std::invalid_argument(
        fmt::format("level {} does not exist in {} paging", level, to_string(d.mode)));
  }
  d.level = level;
  d.value = value;
  d.intel_name = std::string(intel_level_name(level)) + "E";
  d.linux_name = std::string(linux_level_name(d.mode, level));
  d.present = (value & Pte::Present) != 0;
  if (d.mode == PagingMode::Bits32) {
    decode_32bit(d, state);
  } else if (d.mode == PagingMode::Pae && level == 3) {
    decode_pae_pdpte(d, state);
  } else {
    decode_64bit(d, state);
  }
  std::stable_sort(d.flags.begin(), d.flags.end(),
                   [](const NamedBit& a, const NamedBit& b) { return a.position < b.position; });
  for (const auto& r : d.reserved) {
    if ((value & r.mask) != 0) d.violations.push_back(r);
  }
  d.meaning = describe_meaning(d);
  return d;
}

std::string flag_summary(const EntryDecoding& decoded) {
  std::string out;
  for (const auto& f : decoded.flags) {
    if (f.set) out += (out.empty() ? "" : " ") + f.name;
  }
  if (decoded.protection_key != 0) out += fmt::format(" PK={}", decoded.protection_key);
  return out;
}

}  // namespace pagelab::paging

#include "pagelab/paging/entry_format.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_rules.hpp"

namespace pagelab::paging {

namespace {

constexpr unsigned XdPosition = 63;
constexpr unsigned PatLargePosition = 12;
constexpr unsigned PsPosition = 7;

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

// The bits that exist at this level (entry_rules() has decided leaf and page size).
void add_flags(EntryDecoding& d, const CpuState& s) {
  const bool pdpte_register = d.mode == PagingMode::Pae && d.level == 3;
  if (pdpte_register) {
    add_flag(d, "P", 0);
    add_flag(d, "PWT", 3);
    add_flag(d, "PCD", 4);
    return;
  }
  add_common_flags(d);
  const bool wide = d.mode != PagingMode::Bits32;
  const bool ps_reserved =
      d.mode != PagingMode::Pae && wide && (d.level == top_level(d.mode) || d.level == 4);
  if (d.leaf) {
    add_leaf_flags(d, d.level != 1);
  } else if (!ps_reserved) {
    add_flag(d, "PS", PsPosition);
  }
  if (wide && (s.efer & Efer::Nxe) != 0) add_flag(d, "XD", XdPosition);
}

std::string reserved_reason(const CpuState& s, const EntryDecoding& d, ReservedRule rule) {
  const unsigned m = effective_maxphyaddr(s.features);
  switch (rule) {
    case ReservedRule::Above32Bits:
      return "bits 63:32 do not exist in a 32-bit entry";
    case ReservedRule::Pse36Limit: {
      const unsigned width = pse36_width(s.features);
      return s.features.pse36 ? fmt::format("bits {}:{} of a 4 MiB PDE (PSE-36 limit, M={})",
                                            Pte32::Pse36ReservedHi,
                                            Pte32::Pse36Lo + width - Pte32::Pse36PhysShift, width)
                              : "bits 21:13 of a 4 MiB PDE (no PSE-36)";
    }
    case ReservedRule::PdpteLow:
      return "bits 2:1 of a PAE PDPTE";
    case ReservedRule::PdpteMid:
      return "bits 8:5 of a PAE PDPTE";
    case ReservedRule::PdpteAboveMaxphyaddr:
      return fmt::format("bits 63:{} of a PAE PDPTE (above MAXPHYADDR)", m);
    case ReservedRule::AboveMaxphyaddr: {
      const unsigned high = d.mode == PagingMode::Pae ? 62 : Pte::MaxPhysBits - 1;
      return fmt::format("bits {}:{} (above MAXPHYADDR {})", high, m, m);
    }
    case ReservedRule::XdWithoutNxe:
      return "bit 63 (XD) while EFER.NXE=0";
    case ReservedRule::PsAtTop:
      return fmt::format("bit 7 (PS) of a {}E", intel_level_name(d.level));
    case ReservedRule::Bit8AtTopOnAmd:
      return fmt::format("bit 8 of a {}E (reserved on AMD: APM vol. 2 §5.3.3; Intel ignores it)",
                         intel_level_name(d.level));
    case ReservedRule::PsWithout1G:
      return "bit 7 (PS) of a PDPTE: no 1 GiB pages on this CPU";
    case ReservedRule::LargeFrameAlignment: {
      const unsigned frame_lo = offset_bits(d.page_size);
      return fmt::format("bits {}:{} of a {} leaf (frame must be {}-aligned)", frame_lo - 1,
                         PatLargePosition + 1, to_string(d.page_size), to_string(d.page_size));
    }
  }
  return "?";
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
  return bits(0, effective_maxphyaddr(features) - 1);
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
  const EntryRules rules = entry_rules(state, d.mode, level, value);
  d.present = rules.present;
  d.leaf = rules.leaf;
  d.page_size = rules.page_size;
  d.address = rules.address;
  d.protection_key = rules.protection_key;
  for (unsigned i = 0; i < rules.reserved_count; ++i) {
    d.reserved.push_back(
        {rules.reserved[i].mask, reserved_reason(state, d, rules.reserved[i].rule)});
  }
  add_flags(d, state);
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

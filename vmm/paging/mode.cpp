#include "pagelab/paging/mode.hpp"

#include <stdexcept>
#include <string>

#include "pagelab/paging/bits.hpp"

namespace pagelab::paging {

std::string_view to_string(PagingMode mode) {
  switch (mode) {
    case PagingMode::None:
      return "none";
    case PagingMode::Bits32:
      return "32-bit";
    case PagingMode::Pae:
      return "PAE";
    case PagingMode::Level4:
      return "4-level";
    case PagingMode::Level5:
      return "5-level";
  }
  return "?";
}

std::string_view to_string(PageSize size) {
  switch (size) {
    case PageSize::Size4K:
      return "4K";
    case PageSize::Size2M:
      return "2M";
    case PageSize::Size4M:
      return "4M";
    case PageSize::Size1G:
      return "1G";
  }
  return "?";
}

bool has_level(PagingMode mode, unsigned level) {
  return level >= 1 && level <= top_level(mode);
}

std::string_view intel_level_name(unsigned level) {
  switch (level) {
    case 1:
      return "PT";
    case 2:
      return "PD";
    case 3:
      return "PDPT";
    case 4:
      return "PML4";
    case 5:
      return "PML5";
    default:
      return "?";
  }
}

std::array<LinuxLevel, 5> linux_levels(PagingMode mode) {
  // Linux's generic five levels; a mode with fewer hardware levels folds the middle
  // ones into the PGD (asm-generic/pgtable-nop4d.h, -nopud.h, -nopmd.h).
  std::array<LinuxLevel, 5> out{{{"PGD", 0, true, 0},
                                 {"P4D", 0, true, 0},
                                 {"PUD", 0, true, 0},
                                 {"PMD", 0, true, 0},
                                 {"PTE", 0, true, 0}}};
  auto set = [&](unsigned slot, unsigned level) {
    out[slot].bits = level_bits(mode, level).bits;
    out[slot].folded = false;
    out[slot].intel_level = level;
  };
  switch (mode) {
    case PagingMode::None:
      break;
    case PagingMode::Bits32:
      set(0, 2), set(4, 1);
      break;
    case PagingMode::Pae:
      set(0, 3), set(3, 2), set(4, 1);
      break;
    case PagingMode::Level4:
      set(0, 4), set(2, 3), set(3, 2), set(4, 1);
      break;
    case PagingMode::Level5:
      set(0, 5), set(1, 4), set(2, 3), set(3, 2), set(4, 1);
      break;
  }
  return out;
}

std::string_view linux_level_name(PagingMode mode, unsigned level) {
  for (const auto& l : linux_levels(mode)) {
    if (!l.folded && l.intel_level == level) return l.name;
  }
  return "?";
}

LevelBits level_bits(PagingMode mode, unsigned level) {
  if (!has_level(mode, level)) {
    throw std::invalid_argument("level " + std::to_string(level) + " does not exist in " +
                                std::string(to_string(mode)) + " paging");
  }
  return level_bits_unchecked(mode, level);
}

std::vector<PageSize> leaf_sizes(PagingMode mode, unsigned level) {
  if (level == 1 && mode != PagingMode::None) return {PageSize::Size4K};
  if (level == 2 && mode == PagingMode::Bits32) return {PageSize::Size4M};
  if (level == 2 && mode != PagingMode::None) return {PageSize::Size2M};
  if (level == 3 && (mode == PagingMode::Level4 || mode == PagingMode::Level5)) {
    return {PageSize::Size1G};
  }
  return {};
}

unsigned leaf_level(PagingMode mode, PageSize size) {
  for (unsigned level = 1; level <= top_level(mode); ++level) {
    for (PageSize s : leaf_sizes(mode, level)) {
      if (s == size) return level;
    }
  }
  throw std::invalid_argument(std::string(to_string(mode)) + " paging has no " +
                              std::string(to_string(size)) + " pages");
}

Decomposition decompose(PagingMode mode, Linear address, PageSize size) {
  Decomposition d{mode, {}, 0, address.value()};
  if (mode == PagingMode::None) return d;
  const unsigned leaf = leaf_level(mode, size);
  for (unsigned level = top_level(mode); level >= leaf; --level) {
    const LevelBits lb = level_bits(mode, level);
    const auto index = static_cast<unsigned>((address.value() >> lb.lo) & (bit(lb.bits) - 1));
    d.parts.push_back({level, intel_level_name(level), linux_level_name(mode, level), lb.lo,
                       lb.lo + lb.bits - 1, index});
  }
  d.offset_bits = offset_bits(size);
  d.offset = address.value() & (bit(d.offset_bits) - 1);
  return d;
}

}  // namespace pagelab::paging

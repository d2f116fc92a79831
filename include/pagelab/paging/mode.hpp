#pragma once
// Paging modes, page sizes, level names (Intel and Linux) and the split of a linear
// address into table indices and a page offset (SDM §4.1.1, figures 4-2..4-11).
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::paging {

enum class PagingMode { None, Bits32, Pae, Level4, Level5 };
enum class PageSize { Size4K, Size2M, Size4M, Size1G };

// From CR0.PG, CR4.PAE, EFER.LMA and CR4.LA57 (SDM §4.1.1, table 4-1). Inline: every
// decision walk asks.
constexpr PagingMode paging_mode_of(std::uint64_t cr0, std::uint64_t cr4, std::uint64_t efer) {
  if ((cr0 & Cr0::Pg) == 0) return PagingMode::None;
  if ((cr4 & Cr4::Pae) == 0) return PagingMode::Bits32;
  if ((efer & Efer::Lma) == 0) return PagingMode::Pae;
  return (cr4 & Cr4::La57) != 0 ? PagingMode::Level5 : PagingMode::Level4;
}

std::string_view to_string(PagingMode mode);  // "none", "32-bit", "PAE", "4-level", "5-level"
std::string_view to_string(PageSize size);    // "4K", "2M", "4M", "1G"
// Inline: the decision walk asks these on every access.
constexpr unsigned offset_bits(PageSize size) {
  switch (size) {
    case PageSize::Size4K:
      return 12;
    case PageSize::Size2M:
      return 21;
    case PageSize::Size4M:
      return 22;
    case PageSize::Size1G:
      return 30;
  }
  return 12;
}
constexpr std::uint64_t page_bytes(PageSize size) {
  return std::uint64_t{1} << offset_bits(size);
}

// Levels are numbered as in the SDM: 1 = PT, 2 = PD, 3 = PDPT, 4 = PML4, 5 = PML5.
// 0 for None, 2, 3, 4, 5.
constexpr unsigned top_level(PagingMode mode) {
  switch (mode) {
    case PagingMode::None:
      return 0;
    case PagingMode::Bits32:
      return 2;
    case PagingMode::Pae:
      return 3;
    case PagingMode::Level4:
      return 4;
    case PagingMode::Level5:
      return 5;
  }
  return 0;
}
bool has_level(PagingMode mode, unsigned level);
// 4 for 32-bit paging, 8 otherwise.
constexpr unsigned entry_bytes(PagingMode mode) {
  return mode == PagingMode::Bits32 ? 4 : 8;
}
// Width of linear addresses the mode translates: 32, 32, 48, 57 (None: 32).
constexpr unsigned linear_width(PagingMode mode) {
  return mode == PagingMode::Level4 ? 48 : mode == PagingMode::Level5 ? 57 : 32;
}

// Intel's name of a level: "PT", "PD", "PDPT", "PML4", "PML5".
std::string_view intel_level_name(unsigned level);
// Linux's name for the table at `level` in `mode`. Linux always calls the top table the
// PGD and folds the levels a mode lacks: 5-level PGD/P4D/PUD/PMD/PTE, 4-level
// PGD(=PML4)/PUD/PMD/PTE with P4D folded, 3-level PAE PGD(=PDPT)/PMD/PTE with P4D and
// PUD folded, 2-level PGD(=PD)/PTE with P4D, PUD and PMD folded.
std::string_view linux_level_name(PagingMode mode, unsigned level);

// Which bits of the linear address index the table at `level`.
struct LevelBits {
  unsigned level;
  unsigned lo;    // lowest bit of the index
  unsigned bits;  // width of the index (10 in 32-bit paging, 2 for the PAE PDPT, else 9)
};
LevelBits level_bits(PagingMode mode, unsigned level);
// The same without the check that `level` exists in `mode`; inline for the walk.
constexpr LevelBits level_bits_unchecked(PagingMode mode, unsigned level) {
  if (mode == PagingMode::Bits32) return {level, level == 2 ? 22u : 12u, 10};
  if (mode == PagingMode::Pae && level == 3) return {3, 30, 2};
  return {level, 12 + 9 * (level - 1), 9};
}
// Page sizes a leaf at `level` maps in `mode` (ignoring CPU features), or nothing.
std::vector<PageSize> leaf_sizes(PagingMode mode, unsigned level);
// The level whose leaf maps `size` in `mode`; throws std::invalid_argument if none.
unsigned leaf_level(PagingMode mode, PageSize size);

// One Linux level as seen in `mode`: its name, the bits it uses (0 when folded) and
// the Intel level it corresponds to (0 when folded).
struct LinuxLevel {
  std::string_view name;  // PGD, P4D, PUD, PMD, PTE
  unsigned bits;
  bool folded;
  unsigned intel_level;
};
std::array<LinuxLevel, 5> linux_levels(PagingMode mode);

struct IndexPart {
  unsigned level;
  std::string_view intel_name;
  std::string_view linux_name;
  unsigned lo, hi;  // bit range of the linear address
  unsigned index;
};
struct Decomposition {
  PagingMode mode;
  std::vector<IndexPart> parts;  // top level first
  unsigned offset_bits;          // 12 for a 4 KiB page
  std::uint64_t offset;
};
// Split for a page of `size` (the parts end at the leaf level for that size).
Decomposition decompose(PagingMode mode, Linear address, PageSize size = PageSize::Size4K);

}  // namespace pagelab::paging

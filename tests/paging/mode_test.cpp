// Paging modes, level names and address decomposition (SDM §4.1, figures 4-2..4-11;
// Linux folding per asm-generic/pgtable-nop*.h).
#include <gtest/gtest.h>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::paging {
namespace {

TEST(PagingModeOf, FollowsPgPaeLmaLa57) {
  EXPECT_EQ(paging_mode_of(0, Cr4::Pae, Efer::Lma), PagingMode::None);
  EXPECT_EQ(paging_mode_of(Cr0::Pg, 0, 0), PagingMode::Bits32);
  EXPECT_EQ(paging_mode_of(Cr0::Pg, Cr4::Pae, Efer::Lme), PagingMode::Pae);
  EXPECT_EQ(paging_mode_of(Cr0::Pg, Cr4::Pae, Efer::Lme | Efer::Lma), PagingMode::Level4);
  EXPECT_EQ(paging_mode_of(Cr0::Pg, Cr4::Pae | Cr4::La57, Efer::Lma), PagingMode::Level5);
  // LA57 without long mode is not 5-level paging.
  EXPECT_EQ(paging_mode_of(Cr0::Pg, Cr4::Pae | Cr4::La57, 0), PagingMode::Pae);
}

TEST(Decompose, WorkedExampleIndices) {
  const Decomposition d = decompose(PagingMode::Level4, Linear(0x803FE7F5CE));
  ASSERT_EQ(d.parts.size(), 4u);
  EXPECT_EQ(d.parts[0].index, 1u);
  EXPECT_EQ(d.parts[1].index, 0u);
  EXPECT_EQ(d.parts[2].index, 511u);
  EXPECT_EQ(d.parts[3].index, 127u);
  EXPECT_EQ(d.offset, 0x5ceu);
  EXPECT_EQ(d.offset_bits, 12u);
  EXPECT_EQ(d.parts[0].intel_name, "PML4");
  EXPECT_EQ(d.parts[0].linux_name, "PGD");
  EXPECT_EQ(d.parts[0].lo, 39u);
  EXPECT_EQ(d.parts[0].hi, 47u);
  EXPECT_EQ(d.parts[1].linux_name, "PUD");
  EXPECT_EQ(d.parts[2].linux_name, "PMD");
  EXPECT_EQ(d.parts[3].linux_name, "PTE");
}

TEST(Decompose, FiveLevelUsesBits56To48ForPml5) {
  const std::uint64_t va = (std::uint64_t{0x1A5} << 48) | (std::uint64_t{3} << 39) | 0x123;
  const Decomposition d = decompose(PagingMode::Level5, Linear(va));
  ASSERT_EQ(d.parts.size(), 5u);
  EXPECT_EQ(d.parts[0].intel_name, "PML5");
  EXPECT_EQ(d.parts[0].linux_name, "PGD");
  EXPECT_EQ(d.parts[0].lo, 48u);
  EXPECT_EQ(d.parts[0].hi, 56u);
  EXPECT_EQ(d.parts[0].index, 0x1A5u);
  EXPECT_EQ(d.parts[1].linux_name, "P4D");
  EXPECT_EQ(d.parts[1].index, 3u);
  EXPECT_EQ(d.offset, 0x123u);
}

TEST(Decompose, ThirtyTwoBitUsesTenBitIndices) {
  const Decomposition d = decompose(PagingMode::Bits32, Linear(0xC0801ABC));
  ASSERT_EQ(d.parts.size(), 2u);
  EXPECT_EQ(d.parts[0].index, 0x302u);  // bits 31:22
  EXPECT_EQ(d.parts[1].index, 0x001u);  // bits 21:12
  EXPECT_EQ(d.offset, 0xABCu);
  const Decomposition big = decompose(PagingMode::Bits32, Linear(0xC0801ABC), PageSize::Size4M);
  ASSERT_EQ(big.parts.size(), 1u);
  EXPECT_EQ(big.offset_bits, 22u);
  EXPECT_EQ(big.offset, 0x001ABCu);
}

TEST(Decompose, PaeUsesTwoBitPdptIndex) {
  const Decomposition d = decompose(PagingMode::Pae, Linear(0xC0201ABC));
  ASSERT_EQ(d.parts.size(), 3u);
  EXPECT_EQ(d.parts[0].intel_name, "PDPT");
  EXPECT_EQ(d.parts[0].index, 3u);  // bits 31:30
  EXPECT_EQ(d.parts[0].hi, 31u);
  EXPECT_EQ(d.parts[1].index, 1u);  // bits 29:21
  EXPECT_EQ(d.parts[2].index, 1u);  // bits 20:12
  const Decomposition big = decompose(PagingMode::Pae, Linear(0xC0201ABC), PageSize::Size2M);
  EXPECT_EQ(big.offset, 0x1ABCu);
  EXPECT_EQ(big.offset_bits, 21u);
}

TEST(Decompose, HugePageOffsets) {
  const Decomposition g = decompose(PagingMode::Level4, Linear(0x7F12345678), PageSize::Size1G);
  ASSERT_EQ(g.parts.size(), 2u);
  EXPECT_EQ(g.offset, 0x7F12345678u & ((1u << 30) - 1));
  EXPECT_THROW(decompose(PagingMode::Level4, Linear(0), PageSize::Size4M), std::invalid_argument);
  EXPECT_THROW(decompose(PagingMode::Pae, Linear(0), PageSize::Size1G), std::invalid_argument);
}

TEST(LinuxLevels, TwoLevelFoldsP4dPudPmd) {
  const auto l = linux_levels(PagingMode::Bits32);
  EXPECT_EQ(l[0].name, "PGD");
  EXPECT_EQ(l[0].bits, 10u);
  EXPECT_EQ(l[0].intel_level, 2u);
  EXPECT_TRUE(l[1].folded);
  EXPECT_TRUE(l[2].folded);
  EXPECT_TRUE(l[3].folded);
  EXPECT_EQ(l[3].bits, 0u);
  EXPECT_FALSE(l[4].folded);
  EXPECT_EQ(l[4].bits, 10u);
}

TEST(LinuxLevels, PaeFoldsP4dAndPud) {
  const auto l = linux_levels(PagingMode::Pae);
  EXPECT_EQ(l[0].bits, 2u);
  EXPECT_EQ(l[0].intel_level, 3u);
  EXPECT_TRUE(l[1].folded);
  EXPECT_TRUE(l[2].folded);
  EXPECT_FALSE(l[3].folded);
  EXPECT_EQ(l[3].bits, 9u);
  EXPECT_EQ(linux_level_name(PagingMode::Pae, 2), "PMD");
}

TEST(LinuxLevels, FourLevelFoldsOnlyP4d) {
  const auto l = linux_levels(PagingMode::Level4);
  EXPECT_EQ(l[0].intel_level, 4u);
  EXPECT_TRUE(l[1].folded);
  for (unsigned i : {2u, 3u, 4u}) EXPECT_FALSE(l[i].folded) << i;
  EXPECT_EQ(linux_level_name(PagingMode::Level4, 3), "PUD");
}

TEST(LinuxLevels, FiveLevelFoldsNothing) {
  const auto l = linux_levels(PagingMode::Level5);
  for (const auto& level : l) {
    EXPECT_FALSE(level.folded) << level.name;
    EXPECT_EQ(level.bits, 9u);
  }
  EXPECT_EQ(linux_level_name(PagingMode::Level5, 4), "P4D");
  EXPECT_EQ(linux_level_name(PagingMode::Level5, 5), "PGD");
}

TEST(Levels, ExistPerMode) {
  EXPECT_FALSE(has_level(PagingMode::Pae, 4));
  EXPECT_TRUE(has_level(PagingMode::Pae, 3));
  EXPECT_FALSE(has_level(PagingMode::Bits32, 3));
  EXPECT_FALSE(has_level(PagingMode::Level4, 5));
  EXPECT_THROW(level_bits(PagingMode::Pae, 5), std::invalid_argument);
  EXPECT_EQ(entry_bytes(PagingMode::Bits32), 4u);
  EXPECT_EQ(entry_bytes(PagingMode::Pae), 8u);
  EXPECT_EQ(page_bytes(PageSize::Size4M), 4u << 20);
  EXPECT_EQ(leaf_level(PagingMode::Level4, PageSize::Size1G), 3u);
  EXPECT_EQ(leaf_level(PagingMode::Bits32, PageSize::Size4M), 2u);
}

}  // namespace
}  // namespace pagelab::paging

// The worked example, recursive mapping, canonical addresses and A/D bookkeeping
// (DESIGN.md "Facts from the source documents"; SDM §4.5, §4.8).
#include <gtest/gtest.h>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/seed_example.hpp"
#include "walk_fixture.hpp"

namespace pagelab::paging {
namespace {

using test::error_code;
using test::page_fault;
using test::translation;
using test::World;

constexpr std::uint64_t Rw = Pte::Writable;
constexpr std::uint64_t Us = Pte::User;

TEST(WorkedExample, TranslatesTo0xc5ceThroughIndices1_0_511_127) {
  const SeedExample seed = make_seed_example(PagingMode::Level4);
  const Walk w = walk(seed.memory, seed.state, Access{Linear(0x803FE7F5CE)});
  const Translation* t = translation(w);
  ASSERT_NE(t, nullptr) << w.fault_reason;
  EXPECT_EQ(t->physical.value(), 0xc5ceu);
  ASSERT_EQ(w.steps.size(), 4u);
  EXPECT_EQ(w.steps[0].index, 1u);
  EXPECT_EQ(w.steps[1].index, 0u);
  EXPECT_EQ(w.steps[2].index, 511u);
  EXPECT_EQ(w.steps[3].index, 127u);
  EXPECT_EQ(w.steps[0].entry_address.value(), SeedExample::Pml4 + 1 * 8);
  EXPECT_EQ(w.steps[1].entry_address.value(), 0x4000u);            // L3 at 16 KiB, index 0
  EXPECT_EQ(w.steps[2].entry_address.value(), 0x6000u + 511 * 8);  // L2 at 24 KiB
  EXPECT_EQ(w.steps[0].intel_name, "PML4E");
  EXPECT_EQ(w.steps[0].linux_name, "PGD");
  EXPECT_TRUE(w.steps[3].leaf);
  EXPECT_FALSE(w.steps[2].leaf);
}

TEST(WorkedExample, BothPagesOfTheHierarchyAreMapped) {
  const SeedExample seed = make_seed_example(PagingMode::Level4);
  for (std::uint64_t va : {0x803FE7F000ull, 0x803FE00000ull}) {
    const Walk w = walk(seed.memory, seed.state, Access{Linear(va)});
    ASSERT_NE(translation(w), nullptr) << std::hex << va;
  }
  const Walk second = walk(seed.memory, seed.state, Access{Linear(0x803FE00000)});
  EXPECT_EQ(second.steps.back().index, 0u);  // L2[511] -> L1[0]
  // The neighbouring page L1[1] is not mapped.
  EXPECT_EQ(error_code(walk(seed.memory, seed.state, Access{Linear(0x803FE01000)})), 0u);
}

TEST(WorkedExample, FiveLevelSeedTranslatesTheSameAddress) {
  const SeedExample seed = make_seed_example(PagingMode::Level5);
  const Walk w = walk(seed.memory, seed.state, Access{Linear(0x803FE7F5CE)});
  ASSERT_NE(translation(w), nullptr) << w.fault_reason;
  EXPECT_EQ(translation(w)->physical.value(), 0xc5ceu);
  ASSERT_EQ(w.steps.size(), 5u);
  EXPECT_EQ(w.steps[0].intel_name, "PML5E");
  EXPECT_EQ(w.steps[0].linux_name, "PGD");
  EXPECT_EQ(w.steps[1].linux_name, "P4D");
}

// Recursive mapping at L4 index 511: each 511 index consumes one level, so the walk
// ends one level early and the "page" it reaches is a page table.
class RecursiveMap : public ::testing::Test {
 protected:
  static constexpr std::uint64_t Va = 0x803FE7F000;  // indices 1/0/511/127
  static std::uint64_t address(unsigned i4, unsigned i3, unsigned i2, unsigned i1,
                               std::uint64_t offset) {
    std::uint64_t va = (std::uint64_t{i4} << 39) | (std::uint64_t{i3} << 30) |
                       (std::uint64_t{i2} << 21) | (std::uint64_t{i1} << 12) | offset;
    if ((va & bit(47)) != 0) va |= bits(48, 63);
    return va;
  }
  void SetUp() override {
    world.builder.map(Linear(Va), GuestPhys(0xC000), 0x1000, PageSize::Size4K, Rw);
    world.builder.set_recursive(511);
  }
  std::uint64_t physical(std::uint64_t va) {
    const Walk w = world.run(va);
    const Translation* t = translation(w);
    return t != nullptr ? t->physical.value() : ~std::uint64_t{0};
  }
  World world{PagingMode::Level4};
};

TEST_F(RecursiveMap, TopPageReadsTheL4Table) {
  EXPECT_EQ(physical(0xFFFF'FFFF'FFFF'F000), world.builder.root().value());
  // Its entry 1 is the L4 entry for the mapped address.
  EXPECT_EQ(physical(0xFFFF'FFFF'FFFF'F000 + 8),
            world.builder.entry_address(Linear(Va), 4).value());
}

TEST_F(RecursiveMap, Index511ReachesThePageTable) {
  EXPECT_EQ(physical(address(511, 1, 0, 511, 127 * 8)),
            world.builder.entry_address(Linear(Va), 1).value());
}

TEST_F(RecursiveMap, Indices511_511ReachThePageDirectory) {
  EXPECT_EQ(physical(address(511, 511, 1, 0, 511 * 8)),
            world.builder.entry_address(Linear(Va), 2).value());
}

TEST_F(RecursiveMap, Indices511_511_511ReachThePdpt) {
  EXPECT_EQ(physical(address(511, 511, 511, 1, 0)),
            world.builder.entry_address(Linear(Va), 3).value());
}

TEST_F(RecursiveMap, SelfMapIsSupervisorOnly) {
  EXPECT_EQ(error_code(world.run(0xFFFF'FFFF'FFFF'F000, AccessType::Read, Privilege::User)),
            PfError::P | PfError::U);
}

TEST(Canonical, FourLevelNeedsBits63To47Equal) {
  World world(PagingMode::Level4);
  EXPECT_TRUE(test::general_protection(world.run(0x0000'8000'0000'0000)));
  EXPECT_TRUE(test::general_protection(world.run(0xFFFF'7FFF'FFFF'FFFF)));
  EXPECT_TRUE(test::general_protection(world.run(0x0001'0000'0000'0000)));
  // Canonical but unmapped addresses fault with #PF, not #GP.
  EXPECT_EQ(error_code(world.run(0xFFFF'8000'0000'0000)), 0u);
  EXPECT_EQ(error_code(world.run(0x0000'7FFF'FFFF'F000)), 0u);
}

TEST(Canonical, GeneralProtectionHasErrorCodeZeroAndNoSteps) {
  World world(PagingMode::Level4);
  const Walk w = world.run(0x0000'8000'0000'0000, AccessType::Write, Privilege::User);
  ASSERT_TRUE(test::general_protection(w));
  EXPECT_EQ(std::get<GeneralProtection>(w.outcome).error_code, 0u);
  EXPECT_TRUE(w.steps.empty());
}

TEST(Canonical, FiveLevelNeedsBits63To56Equal) {
  CpuFeatures f;
  f.la57 = true;
  World world(PagingMode::Level5, f);
  EXPECT_TRUE(test::general_protection(world.run(0x0100'0000'0000'0000)));
  EXPECT_TRUE(test::general_protection(world.run(0xFE00'0000'0000'0000)));
  // Non-canonical under 4-level, canonical under 5-level.
  EXPECT_EQ(error_code(world.run(0x0000'8000'0000'0000)), 0u);
  EXPECT_EQ(error_code(world.run(0xFF00'0000'0000'0000)), 0u);
}

TEST(NoPaging, LinearIsPhysical) {
  BufferMemory memory(0x1000);
  CpuState state;  // CR0.PG = 0
  const Walk w = walk(memory, state, Access{Linear(0x12345678), AccessType::Write});
  ASSERT_NE(translation(w), nullptr);
  EXPECT_EQ(translation(w)->physical.value(), 0x12345678u);
  EXPECT_TRUE(w.steps.empty());
  EXPECT_THROW(walk(memory, state, Access{Linear(0x1'0000'0000)}), std::invalid_argument);
}

TEST(AccessedDirty, ReadSetsAccessedOnEveryLevelOnly) {
  World world(PagingMode::Level4);
  world.builder.map(Linear(0x400000), GuestPhys(0x5000), 0x1000, PageSize::Size4K, Rw);
  const Walk w = world.run(0x400123);
  const Translation* t = translation(w);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->ad_updates.size(), 4u);
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(t->ad_updates[i].first, w.steps[i].entry_address);
    EXPECT_EQ(t->ad_updates[i].second, Pte::Accessed);
  }
}

TEST(AccessedDirty, WriteSetsDirtyOnTheLeafOnly) {
  World world(PagingMode::Level4);
  world.builder.map(Linear(0x400000), GuestPhys(0x200000), 0x200000, PageSize::Size2M, Rw);
  const Walk w = world.run(0x400123, AccessType::Write);
  const Translation* t = translation(w);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->ad_updates.size(), 3u);  // PML4E, PDPTE, PDE (2 MiB leaf)
  EXPECT_EQ(t->ad_updates[0].second, Pte::Accessed);
  EXPECT_EQ(t->ad_updates[1].second, Pte::Accessed);
  EXPECT_EQ(t->ad_updates[2].second, Pte::Accessed | Pte::Dirty);
}

TEST(AccessedDirty, FaultSetsNoLeafAccessedButUpperMay) {
  World world(PagingMode::Level4);
  world.builder.map(Linear(0x400000), GuestPhys(0x5000), 0x1000, PageSize::Size4K, 0);  // read-only
  const Walk w = world.run(0x400000, AccessType::Write, Privilege::User);
  const PageFault* pf = page_fault(w);
  ASSERT_NE(pf, nullptr);
  ASSERT_EQ(pf->may_set_accessed.size(), 3u);
  for (const auto& [address, set] : pf->may_set_accessed) {
    EXPECT_NE(address, w.steps.back().entry_address);
    EXPECT_EQ(set, Pte::Accessed);
  }
}

TEST(AccessedDirty, PaePdptesHaveNoAccessedBit) {
  World world(PagingMode::Pae);
  world.builder.map(Linear(0x400000), GuestPhys(0x5000), 0x1000, PageSize::Size4K, Rw);
  world.reload_pdptes();
  const Walk w = world.run(0x400000, AccessType::Write);
  const Translation* t = translation(w);
  ASSERT_NE(t, nullptr) << w.fault_reason;
  ASSERT_EQ(t->ad_updates.size(), 2u);  // PDE and PTE, not the PDPTE
  EXPECT_EQ(t->ad_updates[0].first, w.steps[1].entry_address);
  EXPECT_EQ(t->ad_updates[1].second, Pte::Accessed | Pte::Dirty);
}

TEST(AllowedOutcomes, IsTheWalkOutcomeForNow) {
  const SeedExample seed = make_seed_example();
  const Access a{Linear(0x803FE7F5CE)};
  const auto outcomes = allowed_outcomes(seed.memory, seed.state, a);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0], walk(seed.memory, seed.state, a).outcome);
}

TEST(Describe, ErrorCodeNames) {
  EXPECT_EQ(describe_error_code(PfError::P | PfError::W | PfError::U), "P W U");
  EXPECT_EQ(describe_error_code(0), "not-present R S");
  EXPECT_EQ(describe_error_code(PfError::P | PfError::Rsvd | PfError::I), "P R S RSVD I");
}

}  // namespace
}  // namespace pagelab::paging

// decide() (the decision alone) against walk() (decision and explanation): one walk
// routine runs both, so they must agree on every outcome, every A/D update and every
// entry read, over a flat view of memory as over a PhysicalMemory.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/decide.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "walk_fixture.hpp"

namespace pagelab::paging {
namespace {

using test::World;

constexpr std::uint64_t Rw = Pte::Writable;
constexpr std::uint64_t Us = Pte::User;

FlatMemory flat(const BufferMemory& m) {
  return FlatMemory{m.bytes().data(), m.bytes().size()};
}

std::vector<Access> accesses_of(std::uint64_t va) {
  std::vector<Access> out;
  for (AccessType t : {AccessType::Read, AccessType::Write, AccessType::Fetch}) {
    for (Privilege p : {Privilege::Supervisor, Privilege::User}) {
      out.push_back(Access{Linear(va), t, p, false});
    }
    out.push_back(Access{Linear(va), t, Privilege::User, true});
  }
  return out;
}

// Every access to every address, under a few control-register variants.
void expect_same_everywhere(World& w, const std::vector<std::uint64_t>& addresses) {
  const std::uint64_t cr0 = w.state.cr0, cr4 = w.state.cr4;
  for (std::uint64_t variant = 0; variant < 4; ++variant) {
    w.state.cr0 = (variant & 1) != 0 ? cr0 & ~Cr0::Wp : cr0;
    w.state.cr4 = (variant & 2) != 0 ? cr4 | Cr4::Smep | Cr4::Smap : cr4;
    for (std::uint64_t va : addresses) {
      for (const Access& a : accesses_of(va)) {
        const Walk expected = walk(w.memory, w.state, a);
        const Decision d = decide(flat(w.memory), w.state, a);
        EXPECT_EQ(d, decide(w.memory, w.state, a));
        const Outcome o = to_outcome(d);
        EXPECT_EQ(o, expected.outcome) << std::hex << va << " " << describe(expected.outcome);
        EXPECT_EQ(d.entry_count, expected.steps.size());
        for (unsigned i = 0; i < d.entry_count && i < expected.steps.size(); ++i) {
          EXPECT_EQ(d.entries[i].address, expected.steps[i].entry_address);
          EXPECT_EQ(d.entries[i].value, expected.steps[i].value);
          EXPECT_EQ(d.entries[i].level, expected.steps[i].level);
        }
        const auto* pf = std::get_if<PageFault>(&o);
        const auto* want = std::get_if<PageFault>(&expected.outcome);
        if (pf != nullptr && want != nullptr) {
          EXPECT_EQ(pf->may_set_accessed, want->may_set_accessed);
        }
      }
    }
  }
  w.state.cr0 = cr0;
  w.state.cr4 = cr4;
}

TEST(Decide, AgreesWithWalkInFourLevelPaging) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x4000'0000), GuestPhys(0x9000), 0x2000, PageSize::Size4K, Rw | Us);
  w.builder.map(Linear(0x4000'2000), GuestPhys(0xB000), 0x1000, PageSize::Size4K, Us);
  w.builder.map(Linear(0x4000'3000), GuestPhys(0xC000), 0x1000, PageSize::Size4K, Rw);
  w.builder.map(Linear(0x4020'0000), GuestPhys(0x20'0000), 0x20'0000, PageSize::Size2M, Rw | Us);
  w.builder.write_entry(Linear(0x4000'1000), 1,
                        w.builder.read_entry(Linear(0x4000'1000), 1) | Pte::NoExecute);
  w.builder.write_entry(Linear(0x4000'3000), 1,
                        w.builder.read_entry(Linear(0x4000'3000), 1) | bit(50));  // reserved
  expect_same_everywhere(w, {0x4000'0123, 0x4000'1000, 0x4000'2008, 0x4000'3000, 0x4024'5678,
                             0x7000'0000, 0x0000'8000'0000'0000});
}

TEST(Decide, AgreesWithWalkInFiveLevelPaging) {
  CpuFeatures f;
  f.la57 = true;
  World w(PagingMode::Level5, f);
  w.builder.map(Linear(0x1'0000'0000'0000), GuestPhys(0x9000), 0x1000, PageSize::Size4K, Rw | Us);
  expect_same_everywhere(w, {0x1'0000'0000'0010, 0x1'0000'0000'1000, 0x0100'0000'0000'0000});
}

TEST(Decide, AgreesWithWalkInPaePaging) {
  World w(PagingMode::Pae);
  w.builder.map(Linear(0xC020'1000), GuestPhys(0x9000), 0x1000, PageSize::Size4K, Rw | Us);
  w.builder.map(Linear(0x4000'0000), GuestPhys(0x20'0000), 0x20'0000, PageSize::Size2M, Rw);
  w.reload_pdptes();
  expect_same_everywhere(w, {0xC020'1034, 0xC020'2000, 0x4000'1000, 0x8000'0000});
}

TEST(Decide, AgreesWithWalkInThirtyTwoBitPaging) {
  World w(PagingMode::Bits32);
  w.state.cr4 |= Cr4::Pse;
  w.builder.map(Linear(0x0040'1000), GuestPhys(0x9000), 0x1000, PageSize::Size4K, Rw | Us);
  w.builder.map(Linear(0x0080'0000), GuestPhys(0x40'0000), 0x40'0000, PageSize::Size4M, Us);
  expect_same_everywhere(w, {0x0040'1234, 0x0080'0004, 0x00C0'0000});
}

TEST(Decide, RecordsEntriesTopFirstAndTheBitsTheAccessSets) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x4000'0000), GuestPhys(0x9000), 0x1000, PageSize::Size4K, Rw | Us);
  const Access write{Linear(0x4000'0010), AccessType::Write, Privilege::User};
  const Decision d = decide(flat(w.memory), w.state, write);
  ASSERT_EQ(d.kind, Decision::Kind::Translation);
  EXPECT_EQ(d.physical.value(), 0x9010u);
  ASSERT_EQ(d.entry_count, 4u);
  for (unsigned i = 0; i < 4; ++i) EXPECT_EQ(d.entries[i].level, 4 - i);
  const Outcome o = to_outcome(d);
  const auto& t = std::get<Translation>(o);
  ASSERT_EQ(t.ad_updates.size(), 4u);
  EXPECT_EQ(t.ad_updates.front().second, Pte::Accessed);
  EXPECT_EQ(t.ad_updates.back().second, Pte::Accessed | Pte::Dirty);
  EXPECT_EQ(t.leaf_entry_address, d.entries[3].address);
}

TEST(Decide, FlatMemoryRefusesReadsOutsideIt) {
  World w(PagingMode::Level4);
  w.state.cr3 = test::MemoryBytes;  // the top table lies just past the end
  EXPECT_THROW(decide(flat(w.memory), w.state, Access{Linear(0)}), std::out_of_range);
}

TEST(Decide, WideAddressInA32BitModeIsBadInput) {
  World w(PagingMode::Pae);
  EXPECT_THROW(decide(flat(w.memory), w.state, Access{Linear(bit(32))}), std::invalid_argument);
}

}  // namespace
}  // namespace pagelab::paging

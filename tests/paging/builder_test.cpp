// Builder round-trips, verified by the walker; dumps; the tables text format.
#include <gtest/gtest.h>

#include "pagelab/paging/dump.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_format.hpp"
#include "pagelab/paging/seed_example.hpp"
#include "pagelab/paging/tables_file.hpp"
#include "walk_fixture.hpp"

namespace pagelab::paging {
namespace {

using test::error_code;
using test::translation;
using test::World;

constexpr std::uint64_t Rw = Pte::Writable;
constexpr std::uint64_t Us = Pte::User;

std::uint64_t phys(World& w, std::uint64_t va, AccessType t = AccessType::Read,
                   Privilege p = Privilege::Supervisor) {
  const Walk walk = w.run(va, t, p);
  const Translation* tr = translation(walk);
  return tr != nullptr ? tr->physical.value() : ~std::uint64_t{0};
}

TEST(Builder, MapsEveryPageOfARange) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0xFFFF'8000'0000'0000), GuestPhys(0x10'0000), 0x5000, PageSize::Size4K, Rw);
  for (std::uint64_t off = 0; off < 0x5000; off += 0x1000) {
    EXPECT_EQ(phys(w, 0xFFFF'8000'0000'0000 + off + 0x10), 0x10'0010 + off);
  }
  EXPECT_EQ(error_code(w.run(0xFFFF'8000'0000'5000)), 0u);
}

TEST(Builder, IdentityMapWithHugePagesInEveryMode) {
  struct Case {
    PagingMode mode;
    PageSize size;
  };
  CpuFeatures f;
  f.la57 = true;
  for (Case c :
       {Case{PagingMode::Bits32, PageSize::Size4M}, Case{PagingMode::Pae, PageSize::Size2M},
        Case{PagingMode::Level4, PageSize::Size2M}, Case{PagingMode::Level5, PageSize::Size2M}}) {
    World w(c.mode, f);
    w.builder.map(Linear(0), GuestPhys(0), 0x80'0000, c.size, Rw);
    if (c.mode == PagingMode::Pae) w.reload_pdptes();
    for (std::uint64_t va : {0x0ull, 0x1234ull, 0x3F'FFFFull, 0x7F'FFF0ull}) {
      EXPECT_EQ(phys(w, va, AccessType::Write), va) << to_string(c.mode) << " " << std::hex << va;
    }
    EXPECT_EQ(error_code(w.run(0x80'0000)), 0u) << to_string(c.mode);
  }
}

TEST(Builder, RejectsMisalignedAndUnsupported) {
  World w(PagingMode::Level4);
  EXPECT_THROW(w.builder.map(Linear(0x1000), GuestPhys(0), 0x20'0000, PageSize::Size2M, Rw),
               std::invalid_argument);
  EXPECT_THROW(w.builder.map(Linear(0), GuestPhys(0), 0x4000'0000, PageSize::Size1G, Rw),
               std::invalid_argument);  // no 1 GiB pages in the default features
  EXPECT_THROW(w.builder.map(Linear(0), GuestPhys(0), 0x1000, PageSize::Size4M, Rw),
               std::invalid_argument);
  EXPECT_THROW(w.builder.map(Linear(0), GuestPhys(0), 0x1000, PageSize::Size4K, bit(20)),
               std::invalid_argument);  // an address bit is not a flag
  World w32(PagingMode::Bits32);
  EXPECT_THROW(w32.builder.map(Linear(0), GuestPhys(0), 0x1000, PageSize::Size4K, Pte::NoExecute),
               std::invalid_argument);
}

TEST(Builder, UnmapRemovesOnlyTheRange) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x40'0000), GuestPhys(0x40'0000), 0x4000, PageSize::Size4K, Rw);
  w.builder.unmap(Linear(0x40'1000), 0x2000);
  EXPECT_EQ(phys(w, 0x40'0000), 0x40'0000u);
  EXPECT_EQ(error_code(w.run(0x40'1000)), 0u);
  EXPECT_EQ(error_code(w.run(0x40'2000)), 0u);
  EXPECT_EQ(phys(w, 0x40'3000), 0x40'3000u);
  // Unmapping over holes is fine; cutting a huge page is not.
  w.builder.unmap(Linear(0), 0x40'0000);
  w.builder.map(Linear(0x80'0000), GuestPhys(0), 0x20'0000, PageSize::Size2M, Rw);
  EXPECT_THROW(w.builder.unmap(Linear(0x80'1000), 0x1000), std::invalid_argument);
}

TEST(Builder, ProtectChangesRightsSeenByTheWalk) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x40'0000), GuestPhys(0x40'0000), 0x2000, PageSize::Size4K, Rw | Us);
  EXPECT_EQ(phys(w, 0x40'0000, AccessType::Write, Privilege::User), 0x40'0000u);
  w.builder.protect(Linear(0x40'0000), 0x1000, Pte::NoExecute, Pte::Writable);
  EXPECT_EQ(error_code(w.run(0x40'0000, AccessType::Write, Privilege::User)),
            PfError::P | PfError::W | PfError::U);
  EXPECT_EQ(error_code(w.run(0x40'0000, AccessType::Fetch, Privilege::User)),
            PfError::P | PfError::I | PfError::U);
  EXPECT_EQ(phys(w, 0x40'1000, AccessType::Write, Privilege::User), 0x40'1000u);
  EXPECT_THROW(w.builder.protect(Linear(0x40'0000), 0x1000, bit(12), 0), std::invalid_argument);
}

TEST(Builder, SplitKeepsTranslationAndAttributes) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x20'0000), GuestPhys(0x60'0000), 0x20'0000, PageSize::Size2M,
                Us | Pte::NoExecute | Pte::LargePat);
  w.builder.split(Linear(0x20'0000));
  const Walk walk = w.run(0x3F'F123, AccessType::Read, Privilege::User);
  const Translation* t = translation(walk);
  ASSERT_NE(t, nullptr) << walk.fault_reason;
  EXPECT_EQ(t->physical.value(), 0x7F'F123u);
  EXPECT_EQ(t->page_size, PageSize::Size4K);
  EXPECT_FALSE(t->writable);
  EXPECT_FALSE(t->executable);
  EXPECT_NE(t->leaf_entry & Pte::Pat, 0u);  // PAT moved from bit 12 to bit 7
  EXPECT_EQ(error_code(w.run(0x20'0000, AccessType::Write, Privilege::User)),
            PfError::P | PfError::W | PfError::U);
}

TEST(Builder, MergeUndoesSplit) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x20'0000), GuestPhys(0x60'0000), 0x20'0000, PageSize::Size2M, Rw);
  w.builder.split(Linear(0x20'0000));
  ASSERT_EQ(w.run(0x20'0000).steps.size(), 4u);
  EXPECT_TRUE(w.builder.merge(Linear(0x20'0000), PageSize::Size2M));
  const Walk walk = w.run(0x21'2345);
  ASSERT_NE(translation(walk), nullptr);
  EXPECT_EQ(translation(walk)->page_size, PageSize::Size2M);
  EXPECT_EQ(translation(walk)->physical.value(), 0x61'2345u);
  EXPECT_EQ(walk.steps.size(), 3u);
}

TEST(Builder, MergeRefusesMixedAttributesOrHoles) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x20'0000), GuestPhys(0x60'0000), 0x20'0000, PageSize::Size4K, Rw);
  w.builder.protect(Linear(0x21'0000), 0x1000, 0, Pte::Writable);
  EXPECT_FALSE(w.builder.merge(Linear(0x20'0000), PageSize::Size2M));
  w.builder.protect(Linear(0x21'0000), 0x1000, Pte::Writable, 0);
  w.builder.unmap(Linear(0x3F'F000), 0x1000);
  EXPECT_FALSE(w.builder.merge(Linear(0x20'0000), PageSize::Size2M));
  w.builder.map(Linear(0x3F'F000), GuestPhys(0x7F'F000), 0x1000, PageSize::Size4K, Rw);
  EXPECT_TRUE(w.builder.merge(Linear(0x20'0000), PageSize::Size2M));
}

TEST(Builder, SplitAndMergeIn32BitPaging) {
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0x40'0000), GuestPhys(0x80'0000), 0x40'0000, PageSize::Size4M, Rw);
  w.builder.split(Linear(0x40'0000));
  const Walk walk = w.run(0x7F'F123);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0xBF'F123u);
  EXPECT_EQ(translation(walk)->page_size, PageSize::Size4K);
  EXPECT_TRUE(w.builder.merge(Linear(0x40'0000), PageSize::Size4M));
  EXPECT_EQ(translation(w.run(0x7F'F123))->page_size, PageSize::Size4M);
}

TEST(Builder, SplitRefusesA4MegFrameAbove4GiB) {
  // 4 KiB PTEs of 32-bit paging hold 32 address bits only (SDM table 4-6).
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0x40'0000), GuestPhys(0x2'0040'0000), 0x40'0000, PageSize::Size4M, Rw);
  EXPECT_THROW(w.builder.split(Linear(0x40'0000)), std::invalid_argument);
}

TEST(Builder, EntryAddressFollowsTheHierarchy) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x803FE7F000), GuestPhys(0xC000), 0x1000, PageSize::Size4K, Rw);
  const GuestPhys pml4e = w.builder.entry_address(Linear(0x803FE7F000), 4);
  EXPECT_EQ(pml4e, w.builder.root() + 8);
  const Walk walk = w.run(0x803FE7F000);
  for (unsigned i = 0; i < 4; ++i) {
    EXPECT_EQ(w.builder.entry_address(Linear(0x803FE7F000), 4 - i), walk.steps[i].entry_address);
  }
  EXPECT_THROW(w.builder.entry_address(Linear(0x1000), 1), std::invalid_argument);
}

TEST(Dump, TextMergesContiguousRanges) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x20'0000), GuestPhys(0x20'0000), 0x40'0000, PageSize::Size2M, Rw);
  w.builder.map(Linear(0x1000), GuestPhys(0x5000), 0x3000, PageSize::Size4K, Us | Pte::NoExecute);
  const std::string text = dump_text(w.memory, w.state);
  EXPECT_NE(
      text.find("0x0000000000001000-0x0000000000004000    12K  pa 0x5000  ro  NX  USR  3 x 4K"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("0x0000000000200000-0x0000000000600000     4M  pa 0x200000  RW  x   SUP  2 x 2M"),
      std::string::npos)
      << text;
}

TEST(Dump, TextSignExtendsHigherHalf) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0xFFFF'8000'0000'0000), GuestPhys(0), 0x1000, PageSize::Size4K, Rw);
  EXPECT_NE(dump_text(w.memory, w.state).find("0xffff800000000000-0xffff800000001000"),
            std::string::npos);
}

TEST(Dump, DotShowsTheWorkedExampleTree) {
  const SeedExample seed = make_seed_example();
  const std::string dot = dump_dot(seed.memory, seed.state);
  EXPECT_NE(dot.find("digraph"), std::string::npos);
  EXPECT_NE(dot.find("t4_1000 -> t3_4000 [label=\"1\"]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("t3_4000 -> t2_6000 [label=\"0\"]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("-> page_c000 [label=\"127\"]"), std::string::npos) << dot;
}

TEST(DecodeEntry, NamesBitsAndReportsViolations) {
  CpuState s = make_cpu_state(PagingMode::Level4, GuestPhys(0));
  const EntryDecoding d = decode_entry(s, 1, 0x8000000000000867);
  EXPECT_TRUE(d.present);
  EXPECT_TRUE(d.leaf);
  EXPECT_EQ(d.address.value(), 0x0u);
  // 0x867 = bits 0,1,2,5,6 and 11 (available); G is bit 8, not set.
  EXPECT_EQ(flag_summary(d), "P RW US A D XD");
  EXPECT_TRUE(d.violations.empty());
  s.efer &= ~Efer::Nxe;
  EXPECT_EQ(decode_entry(s, 1, 0x8000000000000867).violations.size(), 1u);
  EXPECT_THROW(decode_entry(s, 5, 0), std::invalid_argument);
}

TEST(TablesFile, ParsesTheDocumentedFormat) {
  const TablesFile f = parse_tables_text(
      "# the worked example\n"
      "mode 4\n"
      "cr3 0x1000\n"
      "0x1008 0x4007   # PML4[1]\n"
      "0x4000 0x6007\n"
      "0x6ff8 0x8007\n"
      "0x83f8 0xc007\n");
  ASSERT_TRUE(f.mode.has_value());
  EXPECT_EQ(*f.mode, PagingMode::Level4);
  const CpuState s = state_for(f, *f.mode);
  const Walk w = walk(f.memory, s, Access{Linear(0x803FE7F5CE)});
  ASSERT_NE(translation(w), nullptr) << w.fault_reason;
  EXPECT_EQ(translation(w)->physical.value(), 0xc5ceu);
}

TEST(TablesFile, RejectsBadLinesWithTheLineNumber) {
  try {
    parse_tables_text("cr3 0x1000\n0x1008 zz\n");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("tables:2:8: 'zz' is not a number"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(parse_tables_text("0x1000 0x1\n"), std::invalid_argument);         // no cr3
  EXPECT_THROW(parse_tables_text("cr3 0\n0x1004 0x1\n"), std::invalid_argument);  // unaligned
  EXPECT_THROW(parse_tables_text("cr3 0\nmode 7\n"), std::invalid_argument);
}

}  // namespace
}  // namespace pagelab::paging

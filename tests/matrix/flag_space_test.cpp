// The flag space: counts from the dimensions and the rules, the pruned walk against the
// plain product, names that parse back, selections that split the cases without overlap.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/matrix/case_layout.hpp"
#include "pagelab/matrix/flag_space.hpp"
#include "pagelab/matrix/matrix_run.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::matrix {
namespace {

// gtest's Test has a member named Setup: the tests say CaseSetup.
using CaseSetup = pagelab::matrix::Setup;

MatrixMode mode_named(const std::string& name) {
  const auto m = select_modes(name);
  EXPECT_EQ(m.size(), 1u) << name;
  return m.front();
}

CaseSetup parse_or_fail(const FlagSpace& space, const std::string& name) {
  std::string error;
  const auto s = space.parse(name, &error);
  EXPECT_TRUE(s.has_value()) << name << ": " << error;
  return s.value_or(CaseSetup{});
}

// 32-bit paging, 4 KiB: controls WP, SMEP, SMAP (8 states). Accesses: read, write, fetch at
// CPL0 and CPL3 (6), plus RFLAGS.AC for the two supervisor data accesses when SMAP is on:
// 4 states x 6 + 4 states x 8 = 56, each once or twice: 112. Entries: a present PD (P with
// any of RW, US, A: 8) over any PT (not present, or P with any of RW, US, A, D: 17), or a
// not-present PD over nothing more: 8 x 17 + 1 = 137. No reserved bits exist in 32-bit
// paging's 4 KiB walk.
TEST(FlagSpace, ThirtyTwoBitCountFollowsFromTheDimensions) {
  const FlagSpace space(mode_named("32bit-4k"));
  EXPECT_EQ(space.count(), 112u * 137u);
}

// 4 MiB leaves: one level (P with any of RW, US, A, D: 16, or not present), and one
// reserved bit (PSE-36's bit 21) only in a present leaf: 16 x 2 + 1 = 33.
TEST(FlagSpace, FourMegabyteCountFollowsFromTheDimensions) {
  const FlagSpace space(mode_named("32bit-4m"));
  EXPECT_EQ(space.count(), 112u * 33u);
}

// The pruned walk visits exactly the legal assignments of the plain product, in order.
TEST(FlagSpace, PrunedWalkEqualsTheFilteredProduct) {
  for (const auto* name : {"32bit-4k", "32bit-4m", "pae-2m"}) {
    const FlagSpace space(mode_named(name));
    std::vector<CaseSetup> filtered, walked;
    std::uint64_t all = 0;
    space.for_each_assignment([&](const CaseSetup& s) {
      ++all;
      if (space.legal(s)) filtered.push_back(s);
    });
    space.for_each([&](std::uint64_t n, const CaseSetup& s) {
      EXPECT_EQ(n, walked.size());
      walked.push_back(s);
      return true;
    });
    EXPECT_EQ(all, space.assignments()) << name;
    EXPECT_EQ(walked, filtered) << name;
  }
}

TEST(FlagSpace, DimensionsOwnDisjointBits) {
  for (const auto& mode : matrix_modes()) {
    const FlagSpace space(mode);
    std::vector<CaseSetup> owned;
    for (const auto& d : space.dimensions()) {
      CaseSetup o;
      for (const auto& v : d.values) o |= v;
      for (const auto& other : owned) {
        for (unsigned l = 0; l < o.level.size(); ++l) {
          EXPECT_EQ(o.level[l] & other.level[l], 0) << mode.name << " " << d.name;
        }
        EXPECT_EQ(o.control & other.control, 0) << mode.name << " " << d.name;
        EXPECT_EQ(o.pkru & other.pkru, 0) << mode.name << " " << d.name;
        EXPECT_EQ(o.access & other.access, 0) << mode.name << " " << d.name;
      }
      owned.push_back(o);
    }
  }
}

TEST(FlagSpace, NamesParseBackToTheirCase) {
  for (const auto& mode : matrix_modes()) {
    const FlagSpace space(mode);
    std::set<std::string> names;
    unsigned seen = 0;
    space.for_each([&](std::uint64_t, const CaseSetup& s) {
      const auto name = space.name(s);
      EXPECT_TRUE(names.insert(name).second) << "two cases named " << name;
      std::string error;
      const auto back = space.parse(name, &error);
      EXPECT_TRUE(back.has_value()) << name << ": " << error;
      if (back) {
        EXPECT_EQ(*back, s) << name;
      }
      return ++seen < 20000;
    });
  }
}

TEST(FlagSpace, NumberOfFindsTheCaseAtItsPosition) {
  const FlagSpace space(mode_named("pae-2m"));
  std::map<std::uint64_t, CaseSetup> some;
  space.for_each([&](std::uint64_t n, const CaseSetup& s) {
    if (n % 997 == 0) some[n] = s;
    return true;
  });
  for (const auto& [n, s] : some) EXPECT_EQ(space.number_of(s), n);
}

TEST(FlagSpace, ParseRefusesWithAReason) {
  const FlagSpace space(mode_named("4level-4k"));
  const std::string base = "4level-4k pml4:p,rw,us,a pdpt:p,rw,us,a pd:p,rw,us pt:p,rw,us ";
  std::string error;
  EXPECT_TRUE(space.parse(base + "read cpl0", &error).has_value()) << error;
  EXPECT_FALSE(space.parse(base + "read cpl3 ac smap", &error));
  EXPECT_NE(error.find("ac-supervisor-data-smap"), std::string::npos) << error;
  EXPECT_FALSE(space.parse(base + "read cpl0 bogus", &error));
  EXPECT_NE(error.find("bogus"), std::string::npos) << error;
  EXPECT_FALSE(space.parse("5level pml5:p read cpl0", &error));
  EXPECT_FALSE(space.parse("4level-4k pml4:p,rw,us,a read cpl0", &error));
  EXPECT_NE(error.find("every level"), std::string::npos) << error;
  // Two restricted upper levels at once: the upper dimension varies one at a time.
  EXPECT_FALSE(
      space.parse("4level-4k pml4:p,us,a pdpt:p,rw,a pd:p,rw,us pt:p,rw,us read cpl0", &error));
  EXPECT_NE(error.find("upper"), std::string::npos) << error;
  // pkru without CR4.PKE.
  EXPECT_FALSE(space.parse(base + "pkru:ad read cpl0", &error));
  EXPECT_NE(error.find("pkru-needs-pke"), std::string::npos) << error;
}

// Reserved bits: one at a time, and XD counts as one when EFER.NXE is clear (it is a
// reserved bit then, SDM 4.7); with NXE set, XD and a reserved bit may meet.
TEST(FlagSpace, OneReservedBitCountingXdWithoutNxe) {
  const FlagSpace space(mode_named("4level-4k"));
  const std::string upper = "4level-4k pml4:p,rw,us,a pdpt:p,rw,us,a ";
  std::string error;
  EXPECT_FALSE(space.parse(upper + "pd:p,rw,us,nx pt:p,rw,us,r51 read cpl0", &error));
  EXPECT_TRUE(space.parse(upper + "pd:p,rw,us,nx pt:p,rw,us,r51 nxe read cpl0", &error)) << error;
  // Below a reserved bit the walk ends: the PT keeps its first value (not present).
  EXPECT_FALSE(space.parse(upper + "pd:p,rw,us,r51 pt:p read cpl0", &error));
  EXPECT_NE(error.find("walk-ends-at-fault"), std::string::npos) << error;
  EXPECT_TRUE(space.parse(upper + "pd:p,rw,us,r51 pt:- read cpl0", &error)) << error;
  // A reserved bit in a not-present entry is ignored by the CPU: not a case.
  EXPECT_FALSE(space.parse(upper + "pd:p,rw,us pt:r51 read cpl0", &error));
}

TEST(FlagSpace, ModesAndGroups) {
  EXPECT_EQ(select_modes("4level").size(), 3u);
  EXPECT_EQ(select_modes("32bit").size(), 2u);
  EXPECT_EQ(select_modes("all").size(), matrix_modes().size());
  EXPECT_TRUE(select_modes("4lev").empty());
  EXPECT_TRUE(select_modes("nope").empty());
  // PKE exists only in IA-32e mode, XD not in 32-bit paging.
  EXPECT_TRUE(FlagSpace(mode_named("5level")).has_control(ControlPke));
  EXPECT_FALSE(FlagSpace(mode_named("pae-4k")).has_control(ControlPke));
  EXPECT_TRUE(FlagSpace(mode_named("pae-4k")).has_control(ControlNxe));
  EXPECT_FALSE(FlagSpace(mode_named("32bit-4k")).has_control(ControlNxe));
}

// Every sampled case belongs to exactly one (shard, worker); none outside the sample.
TEST(Selection, ShardsAndWorkersSplitTheSampleWithoutOverlap) {
  const std::uint64_t sample = 7;
  for (unsigned count : {1u, 2u, 3u}) {
    for (unsigned workers : {1u, 2u, 3u}) {
      for (std::uint64_t n = 0; n < 2000; ++n) {
        unsigned owners = 0;
        for (unsigned k = 1; k <= count; ++k) {
          for (unsigned w = 0; w < workers; ++w) {
            Selection s;
            s.sample = sample;
            s.shard.index = k;
            s.shard.count = count;
            s.worker = w;
            s.workers = workers;
            owners += s.selects(n);
          }
        }
        EXPECT_EQ(owners, n % sample == 0 ? 1u : 0u) << n;
      }
    }
  }
}

// A case's flags never touch the address of the next table or frame: bits 12 up to
// MAXPHYADDR-1 are owned only where a large leaf's reserved low bit lives.
TEST(CaseLayout, FlagsLeaveTheAddressBitsAlone) {
  const unsigned maxphyaddr = 40;
  for (const auto& mode : matrix_modes()) {
    const FlagSpace space(mode);
    for (const auto l : space.levels()) {
      const auto top = mode.paging == paging::PagingMode::Bits32 ? 31u : maxphyaddr - 1;
      const auto address = owned_bits(mode, l, maxphyaddr) & paging::bits(12, top);
      const bool large = l == mode.leaf_level && mode.leaf_size != paging::PageSize::Size4K;
      std::uint64_t allowed = 0;
      if (large) {
        allowed = paging::bit(mode.paging == paging::PagingMode::Bits32 ? 21 : 13);
      }
      EXPECT_EQ(address, allowed) << mode.name << " level " << l;
    }
  }
}

TEST(Export, WritesAScenarioThatParses) {
  for (const auto& mode : matrix_modes()) {
    const FlagSpace space(mode);
    unsigned n = 0;
    space.for_each([&](std::uint64_t number, const CaseSetup& s) {
      if (number % 101 != 0) return true;
      const auto text = export_case(space, s, number, 40);
      try {
        const auto sc = lab::scenario::parse_scenario(text, "case.pgl");
        EXPECT_FALSE(sc.statements.empty());
      } catch (const std::exception& e) {
        ADD_FAILURE() << space.name(s) << "\n" << text << "\n" << e.what();
        return false;
      }
      return ++n < 50;
    });
  }
}

TEST(Export, SaysTheCaseInTheLanguage) {
  const FlagSpace space(mode_named("4level-4k"));
  const auto s = parse_or_fail(
      space, "4level-4k pml4:p,rw,us,a pdpt:p,rw,us,a pd:p,rw,us pt:p,rw,nx smep nxe fetch cpl3");
  const auto text = export_case(space, s, 12, 40);
  EXPECT_NE(text.find("mode 4level\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cr0 -wp\n"), std::string::npos) << text;
  EXPECT_NE(text.find("cr4 +smep\n"), std::string::npos) << text;
  EXPECT_NE(text.find("efer +nxe\n"), std::string::npos) << text;
  EXPECT_NE(text.find("set entry 0x500000000000 PT +p +w -u -a -d +nx"), std::string::npos) << text;
  EXPECT_NE(text.find("fetch 0x500000000800 user\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("fetch 0x500000000800 user\nfetch"), std::string::npos) << text;
}

// kvm-unit-tests' AC_ACCESS_TWICE: the same access again, named and exported as such.
TEST(Export, ATwiceCaseAccessesTwice) {
  const FlagSpace space(mode_named("4level-4k"));
  const std::string name =
      "4level-4k pml4:p,rw,us,a pdpt:p,rw,us,a pd:p,rw,us pt:p,us write cpl3 twice";
  const auto s = parse_or_fail(space, name);
  EXPECT_EQ(space.name(s), name);
  const auto text = export_case(space, s, 12, 40);
  const auto first = text.find("write 0x500000000100 user value");
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_NE(text.find("write 0x500000000100 user value", first + 1), std::string::npos) << text;
}

}  // namespace
}  // namespace pagelab::matrix

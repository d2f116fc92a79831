// Accessed/dirty bits read back after a batch (SDM §4.8): every level's A is set
// by a successful walk, the leaf's D only by a successful write, never D on a
// non-leaf entry, and a faulting access leaves the leaf's A clear.
#include <gtest/gtest.h>

#include "lab/engine_fixture.hpp"

namespace pagelab::test {
namespace {

using paging::AccessType;
using paging::Privilege;
using paging::Pte;

using EngineAd = EngineTest;

TEST_F(EngineAd, ReadSetsAOnEveryLevelAndNoD) {
  start();
  auto& s = engine().space();
  one(access(kUserRw, AccessType::Read, Privilege::User));
  EXPECT_TRUE(engine().ad_violations().empty());
  for (unsigned level = 4; level >= 1; --level) {
    const auto e = s.read_entry(kUserRw, level);
    EXPECT_NE(e & Pte::Accessed, 0u) << "level " << level;
    EXPECT_EQ(e & Pte::Dirty, 0u) << "level " << level;
  }
}

TEST_F(EngineAd, WriteSetsDOnTheLeafOnly) {
  start();
  auto& s = engine().space();
  one(access(kUserRw, AccessType::Write, Privilege::User, 4, 9));
  EXPECT_TRUE(engine().ad_violations().empty());
  EXPECT_NE(s.read_entry(kUserRw, 1) & Pte::Dirty, 0u);
  for (unsigned level = 4; level >= 2; --level) {
    EXPECT_EQ(s.read_entry(kUserRw, level) & Pte::Dirty, 0u) << "level " << level;
  }
}

TEST_F(EngineAd, FaultingAccessLeavesTheLeafAClear) {
  start();
  auto& s = engine().space();
  one(access(kSuperRo, AccessType::Write, Privilege::User));
  EXPECT_TRUE(engine().ad_violations().empty());
  EXPECT_EQ(s.read_entry(kSuperRo, 1) & (Pte::Accessed | Pte::Dirty), 0u);
}

TEST_F(EngineAd, ReadThenWriteOnTwoMegabytePage) {
  start();
  auto& s = engine().space();
  const paging::Linear big{0x40000000};
  s.map(big, std::nullopt, 2 << 20, paging::PageSize::Size2M, Pte::User | Pte::Writable);
  const std::vector<lab::Op> ops{
      access(big + 0x1234, AccessType::Read, Privilege::User),
      access(big + 0x100000, AccessType::Write, Privilege::Supervisor, 8, 5)};
  const auto r = engine().run(ops);
  for (const auto& x : r) EXPECT_TRUE(x.agrees) << x.report;
  EXPECT_TRUE(engine().ad_violations().empty());
  const auto pde = s.read_entry(big, 2);
  EXPECT_NE(pde & Pte::Accessed, 0u);
  EXPECT_NE(pde & Pte::Dirty, 0u);
}

}  // namespace
}  // namespace pagelab::test

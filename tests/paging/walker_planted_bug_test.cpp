// Each planted bug disables exactly its rule in the oracle (walk() and decide() alike),
// and clearing it restores the architecture's answer.
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/decide.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/planted_bug.hpp"
#include "walk_fixture.hpp"

namespace pagelab::paging {
namespace {

using test::error_code;
using test::translation;
using test::World;

constexpr std::uint32_t P = PfError::P, W = PfError::W, U = PfError::U, Rsvd = PfError::Rsvd,
                        I = PfError::I;
constexpr std::uint64_t Va = 0x4000'0000;

// Clears the planted bug however the test ends.
struct PlantedBugGuard {
  ~PlantedBugGuard() { set_planted_bug(PlantedBug::None); }
};

// One case per bug: the tables, and the access the bug's rule refuses.
struct Case {
  std::uint64_t flags;  // leaf flags besides P
  std::uint64_t extra;  // more leaf bits (XD, a reserved bit)
  std::function<void(CpuState&)> setup;
  Access access;
  std::uint32_t error_code;  // the architecture's answer
};

const std::map<PlantedBug, Case>& cases() {
  static const std::map<PlantedBug, Case> all{
      {PlantedBug::IgnoreWriteProtect,
       {Pte::User, 0, [](CpuState& s) { s.cr0 |= Cr0::Wp; },
        Access{Linear(Va), AccessType::Write, Privilege::Supervisor}, P | W}},
      {PlantedBug::IgnoreUserBit,
       {Pte::Writable, 0, [](CpuState&) {}, Access{Linear(Va), AccessType::Read, Privilege::User},
        P | U}},
      {PlantedBug::IgnoreExecuteDisable,
       {Pte::Writable, Pte::NoExecute, [](CpuState&) {},
        Access{Linear(Va), AccessType::Fetch, Privilege::Supervisor}, P | I}},
      {PlantedBug::IgnoreSmap,
       {Pte::User, 0, [](CpuState& s) { s.cr4 |= Cr4::Smap; },
        Access{Linear(Va), AccessType::Read, Privilege::Supervisor}, P}},
      {PlantedBug::IgnoreReservedBits,
       {Pte::Writable, bit(48), [](CpuState&) {},  // above MAXPHYADDR 48
        Access{Linear(Va), AccessType::Read, Privilege::Supervisor}, P | Rsvd}},
  };
  return all;
}

struct Planted : ::testing::TestWithParam<PlantedBug> {};

TEST_P(Planted, ChangesTheAnswerOnlyWhilePlanted) {
  PlantedBugGuard guard;
  const Case& c = cases().at(GetParam());
  World w(PagingMode::Level4);
  w.builder.map(Linear(Va), GuestPhys(0x9000), 0x1000, PageSize::Size4K, c.flags);
  w.builder.write_entry(Linear(Va), 1, w.builder.read_entry(Linear(Va), 1) | c.extra);
  c.setup(w.state);
  const FlatMemory flat{w.memory.bytes().data(), w.memory.bytes().size()};

  EXPECT_EQ(error_code(walk(w.memory, w.state, c.access)), c.error_code);
  set_planted_bug(GetParam());
  const Walk planted = walk(w.memory, w.state, c.access);
  ASSERT_NE(translation(planted), nullptr) << planted.fault_reason;
  EXPECT_EQ(translation(planted)->physical.value(), 0x9000u);
  EXPECT_EQ(decide(flat, w.state, c.access).kind, Decision::Kind::Translation);
  set_planted_bug(PlantedBug::None);
  EXPECT_EQ(error_code(walk(w.memory, w.state, c.access)), c.error_code);
  EXPECT_EQ(decide(flat, w.state, c.access).error_code, c.error_code);
}

// A bug disables its own rule only: the other cases keep their answer.
TEST_P(Planted, LeavesTheOtherRulesAlone) {
  PlantedBugGuard guard;
  set_planted_bug(GetParam());
  for (const auto& [bug, c] : cases()) {
    if (bug == GetParam()) continue;
    World w(PagingMode::Level4);
    w.builder.map(Linear(Va), GuestPhys(0x9000), 0x1000, PageSize::Size4K, c.flags);
    w.builder.write_entry(Linear(Va), 1, w.builder.read_entry(Linear(Va), 1) | c.extra);
    c.setup(w.state);
    EXPECT_EQ(error_code(walk(w.memory, w.state, c.access)), c.error_code)
        << to_string(GetParam()) << " changed the answer of " << to_string(bug);
  }
}

INSTANTIATE_TEST_SUITE_P(EveryBug, Planted,
                         ::testing::Values(PlantedBug::IgnoreWriteProtect,
                                           PlantedBug::IgnoreUserBit,
                                           PlantedBug::IgnoreExecuteDisable, PlantedBug::IgnoreSmap,
                                           PlantedBug::IgnoreReservedBits),
                         [](const auto& info) {
                           std::string name(to_string(info.param));
                           for (char& ch : name) ch = ch == '-' ? '_' : ch;
                           return name;
                         });

// Every named bug (but "none") has a case above.
TEST(PlantedBugs, EachHasACase) {
  for (std::string_view name : planted_bug_names()) {
    const auto bug = planted_bug_named(name);
    ASSERT_TRUE(bug.has_value()) << name;
    if (*bug == PlantedBug::None) continue;
    EXPECT_EQ(cases().count(*bug), 1u) << name;
  }
}

}  // namespace
}  // namespace pagelab::paging

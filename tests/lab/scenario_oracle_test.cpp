// Scenarios judged by the model alone: the allowed outcomes follow the SDM (ch. 4), a
// wrong expectation fails with a diff, and the examples hold without a CPU.
#include <gtest/gtest.h>

#include <filesystem>

#include "pagelab/lab/judge/scenario_model.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab::scenario {
namespace {

ScenarioResult run_text(const std::string& text) {
  return run_scenario(parse_scenario(text, "t.pgl"), nullptr);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(ScenarioOracle, EveryExamplePassesWithoutACpu) {
  unsigned files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(PAGELAB_SOURCE_DIR "/examples")) {
    if (entry.path().extension() != ".pgl") continue;
    ++files;
    const auto r = run_scenario(load_scenario(entry.path().string()), nullptr);
    EXPECT_EQ(r.verdict, Verdict::Passed) << format_report(r, true);
    EXPECT_GT(r.accesses.size(), 0u) << entry.path();
    // Every access states what it shows, unless the architecture leaves a choice (a
    // stale translation or the fresh walk) that no single expectation could name.
    for (const auto& a : r.accesses) {
      EXPECT_TRUE(!a.checks.empty() || a.allowed.size() > 1) << entry.path() << ":" << a.where.line;
    }
  }
  EXPECT_GE(files, 9u);
}

TEST(ScenarioOracle, WorkedExampleTranslatesTo0xc5ce) {
  const auto r =
      run_scenario(load_scenario(PAGELAB_SOURCE_DIR "/examples/worked_example.pgl"), nullptr);
  ASSERT_FALSE(r.accesses.empty());
  const auto& walk = r.accesses[0].walk;
  ASSERT_EQ(walk.size(), 4u);
  // Indices 1 / 0 / 511 / 127 (the design document's worked example).
  EXPECT_EQ(walk[0].index, 1u);
  EXPECT_EQ(walk[1].index, 0u);
  EXPECT_EQ(walk[1].entry_address.value(), 0x4000u);
  EXPECT_EQ(walk[2].index, 511u);
  EXPECT_EQ(walk[2].entry_address.value(), 0x6000u + 511 * 8);
  EXPECT_EQ(walk[3].index, 127u);
  EXPECT_TRUE(contains(r.accesses[0].allowed[0], "0xc5ce"));
}

TEST(ScenarioOracle, WrongValueFailsWithBothValuesInTheDiff) {
  const auto r = run_text(
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "poke 0x20_0000 0x1111\n"
      "read 0x4000_0000\n"
      "expect value 0x2222\n");
  EXPECT_EQ(r.verdict, Verdict::Failed);
  ASSERT_EQ(r.accesses.size(), 1u);
  const auto& c = r.accesses[0].checks.at(0);
  EXPECT_FALSE(c.passed);
  EXPECT_TRUE(c.contradicts_architecture);
  EXPECT_TRUE(contains(c.diff, "expected: value 0x2222")) << c.diff;
  EXPECT_TRUE(contains(c.diff, "value 0x1111")) << c.diff;
  EXPECT_TRUE(contains(c.diff, "PTE")) << c.diff;  // the walk
  EXPECT_TRUE(contains(format_report(r, false), "4: expect value 0x2222"));
}

TEST(ScenarioOracle, WrongErrorCodeFails) {
  // A user read of a supervisor page: P=1 (protection) and U=1, so 0x5, not 0x4.
  const auto r = run_text(
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "read 0x4000_0000 user\n"
      "expect pf err=0x4\n");
  EXPECT_EQ(r.verdict, Verdict::Failed);
  EXPECT_TRUE(contains(r.accesses[0].checks[0].diff, "0x5"));
}

TEST(ScenarioOracle, StaleTranslationAllowedUntilInvlpg) {
  const auto r = run_text(
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "read 0x4000_0000\n"
      "set entry 0x4000_0000 PT = 0x20_1003\n"
      "read 0x4000_0000\n"
      "invlpg 0x4000_0123\n"  // any address in the page invalidates it
      "read 0x4000_0000\n");
  ASSERT_EQ(r.accesses.size(), 3u);
  EXPECT_EQ(r.accesses[0].allowed.size(), 1u);
  ASSERT_EQ(r.accesses[1].allowed.size(), 2u);
  EXPECT_TRUE(contains(r.accesses[1].allowed[0], "0x201000"));
  EXPECT_TRUE(contains(r.accesses[1].allowed[1], "0x200000"));
  EXPECT_TRUE(contains(r.accesses[1].allowed[1], "stale"));
  EXPECT_EQ(r.accesses[2].allowed.size(), 1u);
}

TEST(ScenarioOracle, NothingIsStaleBeforeTheFirstAccessOrAfterMovCr3) {
  const auto r = run_text(
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "set entry 0x4000_0000 PT = 0x20_1003\n"  // nothing accessed yet: nothing cached
      "read 0x4000_0000\n"
      "set entry 0x4000_0000 PT = 0x20_2003\n"
      "flush\n"
      "read 0x4000_0000\n");
  ASSERT_EQ(r.accesses.size(), 2u);
  EXPECT_EQ(r.accesses[0].allowed.size(), 1u);
  EXPECT_EQ(r.accesses[1].allowed.size(), 1u);
  EXPECT_TRUE(contains(r.accesses[1].allowed[0], "0x202000"));
}

TEST(ScenarioOracle, GlobalTranslationSurvivesMovCr3ButNotPgeToggle) {
  const auto r = run_text(
      "cr4 +pge\n"
      "map 0x4000_0000 -> 0x20_0000 4k w g\n"
      "read 0x4000_0000\n"
      "set entry 0x4000_0000 PT = 0x20_1103\n"
      "flush\n"
      "read 0x4000_0000\n"
      "cr4 -pge\n"
      "read 0x4000_0000\n");
  ASSERT_EQ(r.accesses.size(), 3u);
  EXPECT_EQ(r.accesses[1].allowed.size(), 2u);
  EXPECT_EQ(r.accesses[2].allowed.size(), 1u);
}

TEST(ScenarioOracle, AccessedAndDirtyFollowTheArchitecture) {
  ScenarioModel model;
  auto s = parse_scenario(
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "write 0x4000_0000 value 1\n"
      "read 0x4000_0000 user\n",
      "t.pgl");
  model.apply(s.statements[0]);
  const auto& write = std::get<AccessStep>(s.statements[1].action);
  auto j = model.judge(write);
  model.commit(write, j, nullptr);
  EXPECT_EQ(model.ad_allowed(1).dirty, std::vector<bool>{true});
  EXPECT_EQ(model.ad_allowed(1).accessed, std::vector<bool>{true});
  EXPECT_EQ(model.ad_allowed(2).dirty, std::vector<bool>{false});  // never on a table entry
  EXPECT_EQ(model.ad_allowed(4).accessed, std::vector<bool>{true});
  EXPECT_FALSE(model.ad_allowed(5).reached);
  EXPECT_EQ(read_bytes(model.memory(), paging::GuestPhys(0x200000), 8), 1u);
}

TEST(ScenarioOracle, FaultLeavesTheLeafAccessedBitAlone) {
  ScenarioModel model;
  auto s = parse_scenario(
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "read 0x4000_0000 user\n",
      "t.pgl");
  model.apply(s.statements[0]);
  const auto& read = std::get<AccessStep>(s.statements[1].action);
  auto j = model.judge(read);
  ASSERT_TRUE(std::holds_alternative<paging::PageFault>(j.fresh.outcome));
  model.commit(read, j, nullptr);
  EXPECT_EQ(model.ad_allowed(1).accessed, std::vector<bool>{false});
  // Upper levels were used before the fault: their A may be set (SDM §4.8).
  EXPECT_EQ(model.ad_allowed(2).accessed, (std::vector<bool>{false, true}));
}

TEST(ScenarioOracle, PaeLoadsPdptesAfterSetup) {
  const auto r = run_text(
      "mode pae\n"
      "map 0x4000_0000 -> 0x20_0000 4k w\n"
      "read 0x4000_0000\n"
      "expect translate 0x20_0000\n");
  EXPECT_EQ(r.verdict, Verdict::Passed) << format_report(r, true);
}

TEST(ScenarioOracle, ArchitectureRefusalIsAScenarioErrorAtTheLine) {
  try {
    run_text("read 0\nmap 0x4000_0800 -> 0x20_0000 4k w\n");
    FAIL() << "a misaligned map was accepted";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.where().line, 2u);
  }
}

TEST(ScenarioOracle, JsonCarriesVerdictsAndWalks) {
  const auto r = run_text("map 0x4000_0000 4k\nread 0x4000_0000\nexpect ok\n");
  const auto j = r.to_json();
  EXPECT_EQ(j["verdict"], "passed");
  EXPECT_EQ(j["counts"]["passed"], 1);
  EXPECT_EQ(j["accesses"][0]["walk"].size(), 4u);
  EXPECT_EQ(j["accesses"][0]["checks"][0]["verdict"], "passed");
}

}  // namespace
}  // namespace pagelab::lab::scenario

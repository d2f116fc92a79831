// The generator: the same seed and shard give the same cases; shards never share one;
// every case is one the scenario language can state, and its `.pgl` parses and runs on
// the oracle alone.
#include <gtest/gtest.h>

#include <set>

#include "pagelab/campaign/shard.hpp"
#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/fuzz/generator.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::fuzz {
namespace {

using paging::PagingMode;

GeneratorConfig config(Profile profile = Profile::All) {
  GeneratorConfig c;
  c.profile = profile;
  c.modes = {PagingMode::Bits32, PagingMode::Pae, PagingMode::Level4, PagingMode::Level5};
  // A CPU with every feature the generator may use, and the MAXPHYADDR the oracle-only
  // model assumes (48): reserved-bit mutations use the bits above it.
  c.features.maxphyaddr = 48;
  c.features.page1g = c.features.smep = c.features.smap = c.features.pku = c.features.la57 = true;
  return c;
}

std::vector<FuzzCase> shard_cases(const GeneratorConfig& cfg, std::uint64_t seed,
                                  const campaign::Shard& shard, std::uint64_t cases) {
  std::vector<FuzzCase> out;
  for (std::uint64_t n = 0; n < cases; ++n) {
    if (shard.owns(n)) out.push_back(generate_case(cfg, seed, n));
  }
  return out;
}

TEST(FuzzGenerator, SameSeedAndShardGiveTheSameCases) {
  const auto shard = campaign::parse_shard("2/3");
  const auto a = shard_cases(config(), 42, shard, 1500);
  const auto b = shard_cases(config(), 42, shard, 1500);
  ASSERT_EQ(a.size(), 500u);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(a[i] == b[i]) << "case " << a[i].number << ":\n"
                              << to_pgl(a[i]) << "---\n"
                              << to_pgl(b[i]);
  }
  // The seed matters: another seed gives other programs.
  const auto c = shard_cases(config(), 43, shard, 1500);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i].same_program(c[i]) ? 1 : 0;
  EXPECT_LT(same, a.size() / 10);
}

TEST(FuzzGenerator, TwoShardsNeverProduceTheSameCase) {
  const auto one = shard_cases(config(), 7, campaign::parse_shard("1/2"), 2000);
  const auto two = shard_cases(config(), 7, campaign::parse_shard("2/2"), 2000);
  std::set<std::uint64_t> numbers;
  std::set<std::string> programs;
  for (const auto& c : one) {
    numbers.insert(c.number);
    programs.insert(to_pgl(c));
  }
  for (const auto& c : two) {
    EXPECT_FALSE(numbers.contains(c.number)) << c.number;
    EXPECT_FALSE(programs.contains(to_pgl(c))) << "case " << c.number << " repeats a case of "
                                               << "shard 1/2:\n"
                                               << to_pgl(c);
  }
  EXPECT_EQ(one.size() + two.size(), 2000u);
}

TEST(FuzzGenerator, EveryProfileGivesCasesTheLanguageCanState) {
  for (const auto& name : profile_names()) {
    const auto profile = profile_named(name);
    ASSERT_TRUE(profile) << name;
    const auto cfg = config(*profile);
    std::set<PagingMode> modes;
    for (std::uint64_t n = 0; n < 4000; n += 7) {
      const auto c = generate_case(cfg, 3, n);
      modes.insert(c.mode);
      ASSERT_EQ(check_case(c), std::nullopt) << to_pgl(c);
      EXPECT_GE(c.access_count(), 1u);
    }
    EXPECT_EQ(modes.size(), 4u) << name << ": every mode is drawn";
  }
  EXPECT_FALSE(profile_named("banana"));
}

TEST(FuzzGenerator, CasesOfEveryModeParseAndRunOnTheOracle) {
  // The scenario language resolves `set entry VA LEVEL` through the tables as they are;
  // a case that check_case() accepts must never make it throw.
  const auto cfg = config();
  for (std::uint64_t n = 0; n < 4000; n += 11) {
    const auto c = generate_case(cfg, 5, n);
    const auto text = to_pgl(c);
    lab::scenario::Scenario s;
    ASSERT_NO_THROW(s = lab::scenario::parse_scenario(text, "case.pgl")) << text;
    std::size_t accesses = 0;
    for (const auto& st : s.statements) {
      accesses += std::holds_alternative<lab::scenario::AccessStep>(st.action) ? 1 : 0;
    }
    EXPECT_EQ(accesses, c.access_count()) << text;
    lab::scenario::ScenarioResult r;
    ASSERT_NO_THROW(r = lab::scenario::run_scenario(s, nullptr)) << text;
    EXPECT_EQ(r.accesses.size(), c.access_count()) << text;
  }
}

TEST(FuzzGenerator, CheckRefusesWhatTheLanguageCannotReplay) {
  FuzzCase c;
  c.mode = PagingMode::Level4;
  const Window& w = window_for(c.mode);
  c.entries = {{4, w.top_index, w.pointer_to(4)}};
  // Level 2 is not reachable by its address: the PDPTE above it is absent.
  c.steps = {StepSetEntry{2, 4, 0x800083, false}, StepAccess{}};
  EXPECT_TRUE(check_case(c).has_value());
  c.entries.push_back({3, 0, w.pointer_to(3)});
  EXPECT_EQ(check_case(c), std::nullopt);
  // A fetch after a change that was not flushed: the CPU may run a stale translation.
  StepAccess fetch;
  fetch.type = paging::AccessType::Fetch;
  c.steps.push_back(fetch);
  EXPECT_TRUE(check_case(c).has_value());
  c.steps.insert(c.steps.end() - 1, StepFlush{});
  EXPECT_EQ(check_case(c), std::nullopt);
  // 32-bit paging has no host writes (an 8-byte store would cover two entries).
  FuzzCase d;
  d.mode = PagingMode::Bits32;
  d.steps = {StepSetEntry{2, window_for(d.mode).top_index, 0, true}};
  EXPECT_TRUE(check_case(d).has_value());
}

}  // namespace
}  // namespace pagelab::fuzz

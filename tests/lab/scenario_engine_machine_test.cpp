// Scenarios on the CPU: every example passes or is skipped with a reason, and a wrong
// expectation shows what the CPU did.
#include <gtest/gtest.h>

#include <filesystem>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"
#include "pagelab/lab/scenario/engine_machine.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"
#include "pagelab/lab/tour/tour_examples.hpp"

namespace pagelab::lab::scenario {
namespace {

class ScenarioKvm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kvm_unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  }
  ScenarioResult run(const Scenario& s) {
    auto machine = make_engine_machine();
    return run_scenario(s, machine.get());
  }
};

TEST_F(ScenarioKvm, EveryExamplePassesOrSkipsWithAReason) {
  for (const auto& entry : std::filesystem::directory_iterator(PAGELAB_SOURCE_DIR "/examples")) {
    if (entry.path().extension() != ".pgl") continue;
    const auto r = run(load_scenario(entry.path().string()));
    EXPECT_NE(r.verdict, Verdict::Failed) << format_report(r, true);
    for (const auto& a : r.accesses) {
      if (a.verdict == Verdict::Skipped) {
        EXPECT_FALSE(a.reason.empty()) << entry.path() << ":" << a.where.line;
      } else {
        EXPECT_FALSE(a.observed.empty()) << entry.path() << ":" << a.where.line;
      }
    }
  }
}

TEST_F(ScenarioKvm, WorkedExampleRunsOnTheCpu) {
  const auto r = run(load_scenario(PAGELAB_SOURCE_DIR "/examples/worked_example.pgl"));
  ASSERT_EQ(r.verdict, Verdict::Passed) << format_report(r, true);
  EXPECT_EQ(r.backend, "kvm");
  // The bytes poked at 0xc5ce..0xc5cf, read through the hierarchy by the guest.
  EXPECT_EQ(r.accesses[0].observed, "ok value 0x1122");
}

TEST_F(ScenarioKvm, WrongExpectationShowsTheObservedValue) {
  const auto r =
      run(parse_scenario("map 0x4000_0000 -> 0x20_0000 4k w\n"
                         "poke 0x20_0000 0x1111\n"
                         "read 0x4000_0000\n"
                         "expect value 0x2222\n",
                         "t.pgl"));
  EXPECT_EQ(r.verdict, Verdict::Failed);
  ASSERT_EQ(r.accesses.size(), 1u);
  const auto& diff = r.accesses[0].checks.at(0).diff;
  EXPECT_NE(diff.find("expected: value 0x2222"), std::string::npos) << diff;
  EXPECT_NE(diff.find("observed: ok value 0x1111"), std::string::npos) << diff;
}

TEST_F(ScenarioKvm, LegacyModeRunsOrIsSkippedWithTheRefusal) {
  // PVM refuses PAE paging (#GP(0) on MOV CR0.PG): the skip names what the guest saw.
  const auto r = run(parse_scenario("mode pae\nmap 0x4000_0000 4k\nread 0x4000_0000\n", "t.pgl"));
  EXPECT_NE(r.verdict, Verdict::Failed) << format_report(r, true);
  if (r.verdict == Verdict::Skipped) {
    EXPECT_NE(r.reason.find("PAE paging refused"), std::string::npos) << r.reason;
    EXPECT_NE(r.reason.find("#GP"), std::string::npos) << r.reason;
  }
}

TEST_F(ScenarioKvm, ForeignWriteIsSeenAfterInvlpgOrSkippedAsANamedDeviation) {
  // SDM §4.10.4.2: after INVLPG the CPU must use the new PTE. A platform that keeps the
  // old one (PVM for host writes) must show up as a named deviation, never a pass.
  const auto r =
      run(parse_scenario("map 0x4000_0000 -> 0x20_0000 4k w u\n"
                         "poke 0x20_0000 0x1111\n"
                         "poke 0x20_1000 0x2222\n"
                         "read 0x4000_0000 user\n"
                         "set entry 0x4000_0000 PT = 0x20_1007 via host\n"
                         "invlpg 0x4000_0000\n"
                         "read 0x4000_0000 user\n"
                         "expect value 0x2222\n",
                         "t.pgl"));
  ASSERT_EQ(r.accesses.size(), 2u);
  const auto& a = r.accesses[1];
  EXPECT_NE(a.verdict, Verdict::Failed) << format_report(r, true);
  if (a.verdict == Verdict::Skipped) {
    EXPECT_NE(a.reason.find("deviation"), std::string::npos) << a.reason;
  } else {
    EXPECT_EQ(a.observed, "ok value 0x2222");
  }
}

TEST_F(ScenarioKvm, TourRunsTheWorkedExampleAndTheRecursiveMap) {
  const auto examples = run_tour_examples();
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_TRUE(tour_examples_ok(examples)) << format_tour_examples(examples);
  const std::string text = format_tour_examples(examples);
  EXPECT_NE(text.find("0xc5ce"), std::string::npos) << text;
  EXPECT_NE(text.find("PML4"), std::string::npos) << text;
  EXPECT_NE(text.find("CPU:    ok value 0x1122"), std::string::npos) << text;
  EXPECT_EQ(tour_examples_json(examples).size(), 2u);
}

// The examples for every paging mode on QEMU TCG (-cpu max: legacy paging, 1 GiB pages,
// LA57): each passes, or an access is skipped as a named platform deviation.
class ScenarioQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!find_qemu_binary()) GTEST_SKIP() << "needs " << qemu_binary_name() << " (not on $PATH)";
  }
  static ScenarioResult run(const Scenario& s) {
    LabOptions options;
    options.backend = BackendKind::Qemu;
    auto machine = make_engine_machine(options);
    return run_scenario(s, machine.get());
  }
};

TEST_F(ScenarioQemu, ModeExamplesRunInEveryMode) {
  for (const char* name :
       {"paging32_4k", "paging32_pse_4m", "pse36", "pae", "huge_1g", "five_level"}) {
    const auto r = run(load_scenario(std::string(PAGELAB_SOURCE_DIR "/examples/") + name + ".pgl"));
    EXPECT_NE(r.verdict, Verdict::Failed) << format_report(r, true);
    EXPECT_TRUE(r.reason.empty()) << name << ": the whole scenario was skipped: " << r.reason;
    std::size_t ran = 0;
    for (const auto& a : r.accesses) {
      if (a.verdict == Verdict::Skipped) {
        EXPECT_NE(a.reason.find("deviation"), std::string::npos) << name << ": " << a.reason;
      } else {
        ++ran;
        EXPECT_FALSE(a.observed.empty()) << name << ":" << a.where.line;
      }
    }
    EXPECT_GT(ran, 0u) << name;
  }
}

TEST_F(ScenarioQemu, ProbeWritesEntriesAfterEferNxeIsCleared) {
  // The probe stores entries through its identity map of the table pool; an XD bit
  // there would be a reserved bit once EFER.NXE is 0, and every store would fault.
  for (const char* mode : {"4level", "5level"}) {
    const auto r = run(parse_scenario(std::string("mode ") + mode + R"(
map 0x4000_0000 -> 0x20_0000 4k w
poke 0x20_0000 0x77
efer -nxe
set entry 0x4000_0000 PT -w via probe
invlpg 0x4000_0000
read 0x4000_0000
expect value 0x77
)",
                                      "t.pgl"));
    ASSERT_EQ(r.accesses.size(), 1u) << mode;
    EXPECT_EQ(r.accesses[0].verdict, Verdict::Passed) << mode << "\n" << format_report(r, true);
  }
}

TEST(TourExamples, BuiltInScenariosHoldWithTheOracle) {
  // The tour embeds its scenarios; they must hold with the oracle alone too.
  const auto examples = run_tour_examples({}, true);
  ASSERT_EQ(examples.size(), 2u);
  for (const auto& e : examples) {
    EXPECT_EQ(e.result.verdict, Verdict::Passed) << format_report(e.result, true);
  }
}

}  // namespace
}  // namespace pagelab::lab::scenario

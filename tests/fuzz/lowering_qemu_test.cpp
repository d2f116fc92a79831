// The two lowerings of a fuzz case agree: run as engine operations in a batch (the
// fuzzer's fast path) and as the `.pgl` text `pagelab run` replays, on QEMU, every access
// gets the same verdict and the CPU does the same thing — with the real judge, and with a
// planted bug that makes some of them fail.
#include <gtest/gtest.h>

#include "needs_backend.hpp"
#include "pagelab/fuzz/generator.hpp"
#include "pagelab/fuzz/runner.hpp"
#include "pagelab/lab/scenario/engine_machine.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/planted_bug.hpp"

namespace pagelab::fuzz {
namespace {

namespace sc = lab::scenario;
using paging::PagingMode;

// "ok value 0x..", "#PF error code 0x5 (..) CR2=..", "#GP..." as outcome_class() spells them.
std::string class_of(const std::string& observed) {
  if (observed.rfind("ok", 0) == 0) return "ok";
  const std::string pf = "#PF error code ";
  if (observed.rfind(pf, 0) == 0) {
    return "pf:" + observed.substr(pf.size(), observed.find(' ', pf.size()) - pf.size());
  }
  if (observed.rfind("#GP", 0) == 0) return "gp";
  return observed;
}

class FuzzLowering : public test::QemuTest {
 protected:
  void TearDown() override { paging::set_planted_bug(paging::PlantedBug::None); }

  // Compares the fast path and the replay of `c` access by access.
  static void compare(lab::Lab& lab, ModeRunner& runner, const FuzzCase& c) {
    const auto fast = runner.run(std::span(&c, 1)).front();
    const auto text = to_pgl(c);
    const auto scenario = sc::parse_scenario(text, "case.pgl");
    lab::LabOptions options;
    options.backend = lab::BackendKind::Qemu;
    auto machine = sc::make_engine_machine(options, false);
    const auto replay = sc::run_scenario(scenario, machine.get());
    ASSERT_EQ(replay.accesses.size(), fast.accesses.size()) << text;
    for (std::size_t i = 0; i < fast.accesses.size(); ++i) {
      const auto& f = fast.accesses[i];
      const auto& r = replay.accesses[i];
      SCOPED_TRACE(text + "access " + std::to_string(i) + ": " + r.text);
      ASSERT_EQ(f.ran, r.verdict != sc::Verdict::Skipped || !r.deviation.empty()) << r.reason;
      if (!f.ran) continue;
      EXPECT_EQ(outcome_class(f.observed), class_of(r.observed));
      EXPECT_EQ(!f.agrees, r.disagrees);
      EXPECT_EQ(f.deviation, r.deviation);
      EXPECT_EQ(f.agrees || !f.deviation.empty(), r.verdict != sc::Verdict::Failed);
    }
    (void)lab;
  }
};

TEST_F(FuzzLowering, FastPathAndReplayAgreeInEveryLegacyAndLongMode) {
  lab::LabOptions options;
  options.backend = lab::BackendKind::Qemu;
  lab::Lab lab(options);
  for (const auto mode : {PagingMode::Level4, PagingMode::Pae, PagingMode::Bits32}) {
    lab.reset();  // the engine does not leave long mode for legacy paging by itself
    ModeRunner runner(lab, mode);
    GeneratorConfig cfg;
    cfg.modes = {mode};
    cfg.features = lab.cpu().paging_features();
    for (std::uint64_t n = 0; n < 3; ++n) {
      SCOPED_TRACE(mode_keyword(mode) + " case " + std::to_string(n));
      compare(lab, runner, generate_case(cfg, 11, n));
    }
  }
}

TEST_F(FuzzLowering, APdpteTheSetupChangesIsLoadedInBothLowerings) {
  // In a `.pgl`, what comes before the first access is the setup, made before MOV CR3
  // loads the PDPTE registers; the fast path makes those steps before its reset's flush.
  lab::LabOptions options;
  options.backend = lab::BackendKind::Qemu;
  lab::Lab lab(options);
  ModeRunner runner(lab, PagingMode::Pae);
  const Window& w = window_for(PagingMode::Pae);
  FuzzCase c;
  c.mode = PagingMode::Pae;
  const auto present = paging::Pte::Present;
  c.entries = {{w.top, w.top_index, 0},
               {2, w.canonical()[2], w.table[1] | present},
               {1, w.canonical()[1], data_frames_4k().front() | present}};
  c.steps = {StepSetEntry{w.top, w.top_index, w.table[2] | present, false},
             StepAccess{w.address(w.canonical(), 0x100)}};
  ASSERT_EQ(check_case(c), std::nullopt);
  const auto fast = runner.run(std::span(&c, 1)).front();
  ASSERT_EQ(fast.accesses.size(), 1u);
  EXPECT_EQ(outcome_class(fast.accesses.front().observed), "ok");
  compare(lab, runner, c);
}

TEST_F(FuzzLowering, FailuresOfAPlantedBugAgreeToo) {
  paging::set_planted_bug(paging::PlantedBug::IgnoreUserBit);
  lab::LabOptions options;
  options.backend = lab::BackendKind::Qemu;
  lab::Lab lab(options);
  ModeRunner runner(lab, PagingMode::Level4);
  GeneratorConfig cfg;
  cfg.profile = Profile::Rights;
  cfg.modes = {PagingMode::Level4};
  cfg.features = lab.cpu().paging_features();
  // The first cases the planted bug makes fail.
  std::vector<FuzzCase> cases;
  for (std::uint64_t n = 0; n < 200; ++n) cases.push_back(generate_case(cfg, 2, n));
  const auto outcomes = runner.run(cases);
  unsigned compared = 0;
  for (std::size_t k = 0; k < cases.size() && compared < 2; ++k) {
    if (outcomes[k].verdict != CaseOutcome::Verdict::Failed) continue;
    if (outcomes[k].disagreement->rule.find("-U: pf:") == std::string::npos) continue;
    compare(lab, runner, cases[k]);
    ++compared;
  }
  EXPECT_EQ(compared, 2u) << "the planted bug made fewer than 2 of 200 cases fail";
}

}  // namespace
}  // namespace pagelab::fuzz

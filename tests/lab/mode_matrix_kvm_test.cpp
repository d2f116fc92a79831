// The mode-transition matrix on the CPU: every case either agrees with the SDM model,
// is a listed deviation, or was skipped with a reason; the routes that every x86-64
// platform must support agree.
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "lab/mode_matrix_checks.hpp"
#include "needs_backend.hpp"
#include "pagelab/lab/modes/mode_matrix.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {
namespace {

using test::describe;
using test::kvm_missing;

struct OnKvm {
  static std::optional<std::string> missing() { return kvm_missing(); }
  static MatrixOptions options() {
    MatrixOptions options;
    options.lab.watchdog = std::chrono::milliseconds(2000);
    return options;
  }
};

class ModeMatrixKvm : public test::MatrixSuite<OnKvm> {};

TEST_F(ModeMatrixKvm, NoUnexplainedMismatch) {
  for (const auto* c : all_cases()) EXPECT_NE(c->verdict, CaseVerdict::Mismatch) << describe(*c);
  EXPECT_TRUE(result().passed());
}

TEST_F(ModeMatrixKvm, AllowedButRefusedIsAlwaysAListedDeviation) {
  for (const auto* c : all_cases()) {
    if (c->expected.allowed && c->observed.executed && c->observed.faulted) {
      EXPECT_EQ(c->verdict, CaseVerdict::Deviation) << describe(*c);
      EXPECT_FALSE(c->deviation_id.empty()) << describe(*c);
    }
  }
}

TEST_F(ModeMatrixKvm, EveryCaseHasARuleABackendAndSkipsSayWhy) {
  std::set<paging::Mode> froms;
  for (const auto& c : result().cases) {
    froms.insert(c.from);
    EXPECT_EQ(c.backend, "kvm");
    EXPECT_FALSE(c.expected.rule.empty()) << describe(c);
    if (!c.expected.allowed) {
      EXPECT_NE(c.expected.rule.find("SDM"), std::string::npos) << describe(c);
    }
    if (c.verdict == CaseVerdict::Skipped) {
      EXPECT_FALSE(c.detail.empty()) << describe(c);
    }
  }
  for (const auto m : matrix_from_states()) {
    EXPECT_TRUE(froms.count(m)) << "no case from " << short_name(m);
  }
}

TEST_F(ModeMatrixKvm, RealProtectedAndIa32eFromStatesAreReachedAndRun) {
  // Every x86-64 platform runs real mode, protected mode and IA-32e 4-level paging.
  std::set<paging::Mode> ran;
  for (const auto& c : result().cases) {
    if (c.observed.executed) ran.insert(c.from);
  }
  for (const auto m : {paging::Mode::Real, paging::Mode::Protected, paging::Mode::Compatibility4,
                       paging::Mode::Long64_4Level}) {
    EXPECT_TRUE(ran.count(m)) << "nothing ran from " << short_name(m);
  }
}

TEST_F(ModeMatrixKvm, RoutesCDAndTheWayDownAgree) {
  // Route (d) sets EFER.LME with PAE=0 first, a state kvm_amd npt=1 inside QEMU TCG never
  // comes back from (lab::platform_wedge): there it is skipped at that step, saying so.
  bool d_wedges = false;
  for (const auto& c : route("d").steps) {
    d_wedges = d_wedges || c.detail.starts_with("would wedge this platform");
  }
  if (d_wedges) {
    EXPECT_EQ(route("d").overall(), CaseVerdict::Skipped);
    bool past_the_wedge = false;
    for (const auto& c : route("d").steps) {
      past_the_wedge = past_the_wedge || c.detail.starts_with("would wedge this platform");
      if (past_the_wedge) {
        EXPECT_FALSE(c.observed.executed) << describe(c);
      }
    }
  }
  for (const auto* name : {"c", "d", "down"}) {
    if (d_wedges && std::string(name) == "d") continue;
    const auto& r = route(name);
    EXPECT_EQ(r.overall(), CaseVerdict::Agreed) << name;
    for (const auto& c : r.steps) {
      EXPECT_EQ(c.verdict, CaseVerdict::Agreed) << describe(c);
    }
  }
  // Route (c) ends in 64-bit mode, the way down in real mode.
  EXPECT_EQ(paging::mode_of(route("c").steps.back().observed.after), paging::Mode::Long64_4Level);
  EXPECT_EQ(paging::mode_of(route("down").steps.back().observed.after), paging::Mode::Real);
  if (d_wedges) return;
  // Route (d)'s PG with PAE=0 must be refused with #GP(0) (SDM 4.1.2).
  bool refused = false;
  for (const auto& c : route("d").steps) {
    if (!c.expected.allowed) {
      refused = true;
      EXPECT_TRUE(c.observed.faulted);
      EXPECT_EQ(c.observed.vector, 13u);
    }
  }
  EXPECT_TRUE(refused);
}

TEST_F(ModeMatrixKvm, RoutesAAndBAgreeOrAreTheLegacyPagingDeviation) {
  for (const auto* name : {"a", "b"}) {
    const auto& r = route(name);
    if (r.overall() == CaseVerdict::Agreed || r.overall() == CaseVerdict::Skipped) continue;
    ASSERT_EQ(r.overall(), CaseVerdict::Deviation) << name;
    for (const auto& c : r.steps) {
      if (c.verdict == CaseVerdict::Deviation) {
        EXPECT_EQ(c.deviation_id, "pvm-legacy-paging-refused") << describe(c);
      }
    }
  }
}

TEST_F(ModeMatrixKvm, FarJumpsRanAndTheSegmentsMatchTheGdt) {
  int jumps = 0;
  for (const auto& r : result().routes) {
    for (const auto& c : r.steps) {
      if (c.step.what != paging::Write::FarJumpCs || !c.observed.executed) continue;
      ++jumps;
      EXPECT_TRUE(c.observed.segment_problem.empty()) << describe(c);
    }
  }
  EXPECT_GE(jumps, 4);
}

TEST_F(ModeMatrixKvm, RealModeCr0WritesAndEveryFarJumpRun) {
  // Real mode (11 CR0 writes but PE+PG, 4 far jumps) and protected, compat4, long64
  // (4 far jumps each) are reached on every x86-64 platform.
  EXPECT_GE(test::expect_real_mode_writes_and_far_jumps_ran(result()), 10 + 4 + 3 * 4);
  for (const auto m :
       {paging::Mode::Protected, paging::Mode::Compatibility4, paging::Mode::Long64_4Level}) {
    test::expect_16bit_landing(result(), m);
  }
}

TEST(ModeMatrixKvmRun, InjectedUnlistedDeviationFailsTheRun) {
  if (auto why = kvm_missing()) GTEST_SKIP() << *why;
  test::expect_injected_refusal_fails_the_run(MatrixOptions{}, paging::Mode::Long64_4Level);
}

TEST(ModeMatrixKvmRun, WithoutTheDeviationListARefusalIsAMismatch) {
  if (auto why = kvm_missing()) GTEST_SKIP() << *why;
  // SDM 4.1.2: 32-bit paging is entered; PVM refuses it.
  test::expect_unlisted_disagreement_is_a_mismatch(MatrixOptions{}, paging::Mode::Protected,
                                                   "CR0.PG 0->1", true);
}

TEST_F(ModeMatrixKvm, ModelFeaturesMatchTheCpuidTheGuestExecutes) {
  // SDM 2.5 ties CR4's reserved bits to what CPUID returns to the software, so the
  // model must judge with the guest's own CPUID (asked here in a fresh Lab).
  Lab lab;
  const auto r = lab.command(PROBE_CMD_CPUID, 7, 0);
  ASSERT_TRUE(r.ok());
  // MB_VALUE = EBX:EAX, MB_VALUE2 = EDX:ECX (probe_abi.h).
  const auto ebx = static_cast<std::uint32_t>(r.value >> 32);
  const auto ecx = static_cast<std::uint32_t>(r.value2);
  const auto& f = result().features;
  EXPECT_EQ((ebx & paging::bit(0)) != 0, f.fsgsbase);
  EXPECT_EQ((ebx & paging::bit(7)) != 0, f.smep);
  EXPECT_EQ((ebx & paging::bit(20)) != 0, f.smap);
  EXPECT_EQ((ecx & paging::bit(3)) != 0, f.pku);
  EXPECT_EQ((ecx & paging::bit(16)) != 0, f.la57);
}

}  // namespace
}  // namespace pagelab::lab

// The mode-transition matrix on QEMU TCG (-cpu max): the from-states KVM on PVM cannot
// reach (32-bit paging, PAE, 5-level) run there, and every case agrees with the SDM
// model, is a deviation listed for qemu-tcg, or was skipped with a reason.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "lab/mode_matrix_checks.hpp"
#include "needs_backend.hpp"
#include "pagelab/lab/modes/mode_matrix.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {
namespace {

using test::describe;
using test::qemu_missing;

struct OnQemu {
  static std::optional<std::string> missing() { return qemu_missing(); }
  static MatrixOptions options() {
    MatrixOptions options;
    options.lab.backend = BackendKind::Qemu;
    options.lab.watchdog = std::chrono::milliseconds(5000);
    return options;
  }
};

class ModeMatrixQemu : public test::MatrixSuite<OnQemu> {};

TEST_F(ModeMatrixQemu, EveryCaseAgreesIsAListedQemuDeviationOrSaysWhyItSkipped) {
  EXPECT_EQ(result().backend, "qemu-tcg");
  EXPECT_EQ(result().platform, "qemu-tcg");
  for (const auto* c : all_cases()) {
    EXPECT_EQ(c->backend, "qemu-tcg") << describe(*c);
    EXPECT_NE(c->verdict, CaseVerdict::Mismatch) << describe(*c);
    if (c->verdict == CaseVerdict::Deviation) {
      EXPECT_EQ(c->deviation_id.rfind("qemu-", 0), 0u) << describe(*c);
    }
    if (c->verdict == CaseVerdict::Skipped) {
      EXPECT_FALSE(c->detail.empty()) << describe(*c);
    }
  }
  EXPECT_TRUE(result().passed());
}

// One test for what the run covered: each QEMU matrix run takes seconds (QEMU's
// vmexit loops wait out the watchdog), and CTest runs every test in its own process.
TEST_F(ModeMatrixQemu, EveryFromStateAndRouteRanOnAReusedLab) {
  // -cpu max has PSE, PAE and LA57: the SDM lets software enter each of these.
  ASSERT_TRUE(result().features.la57);
  std::map<paging::Mode, int> ran;
  for (const auto& c : result().cases) {
    EXPECT_EQ(c.detail.find("from-state unreachable"), std::string::npos) << describe(c);
    if (c.observed.executed) ++ran[c.from];
  }
  for (const auto m : matrix_from_states()) {
    EXPECT_GT(ran[m], 10) << "too few cases ran from " << short_name(m);
  }

  for (const auto* name : {"c", "5-level"}) {
    EXPECT_EQ(route(name).overall(), CaseVerdict::Agreed) << name;
  }
  EXPECT_EQ(paging::mode_of(route("5-level").steps.back().observed.after),
            paging::Mode::Long64_5Level);
  // Route (a) reaches 32-bit paging and (b) PAE paging on the way.
  auto reached = [](const RouteResult& r, paging::Mode m) {
    for (const auto& c : r.steps) {
      if (c.verdict == CaseVerdict::Agreed && paging::mode_of(c.observed.after) == m) return true;
    }
    return false;
  };
  EXPECT_TRUE(reached(route("a"), paging::Mode::Paging32));
  EXPECT_TRUE(reached(route("b"), paging::Mode::Pae));

  // A QEMU Lab takes tens of milliseconds to start: most cases rewind one instead.
  int executed = 0;
  for (const auto* c : all_cases()) executed += c->observed.executed;
  EXPECT_GT(result().rewinds, executed / 2);
  // After a stop the same QEMU is reset (system_reset), never replaced: one process.
  EXPECT_GT(result().resets, 0);
  EXPECT_EQ(result().labs_started, 1) << "a reset failed, so a new QEMU was started";
}

TEST_F(ModeMatrixQemu, RealModeCr0WritesAndEveryFarJumpRun) {
  // Every from-state is reached here: 10 real-mode CR0 writes and 4 far jumps from each of
  // the 8 from-states.
  EXPECT_EQ(test::expect_real_mode_writes_and_far_jumps_ran(result()), 10 + 8 * 4);
  for (const auto m : matrix_from_states()) {
    if (m != paging::Mode::Real) test::expect_16bit_landing(result(), m);
  }
}

TEST(ModeMatrixQemuRun, TheL1D1PadReportsTheWidthItRanAs) {
  if (auto why = qemu_missing()) GTEST_SKIP() << *why;
  Lab lab(OnQemu::options().lab);
  lab.enter_protected();
  // Outside IA-32e mode L is ignored and D=1: the pad runs as 32-bit code (SDM 3.4.5).
  auto r = lab.command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE_L1D1);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 32u);
  EXPECT_EQ(r.cs, PROBE_SEL_CODE_L1D1);
  r = lab.command(PROBE_CMD_REPORT);  // back through CODE32
  EXPECT_EQ(r.cs, PROBE_SEL_CODE32);
  lab.enter_long(paging::PagingMode::Level4);
  // In IA-32e mode the SDM raises #GP(0x68); where the platform takes the jump the pad
  // must say it ran as 64-bit code, as qemu-far-jump-l1-d1-in-ia32e-accepted describes.
  r = lab.command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE_L1D1);
  if (r.faulted()) {
    EXPECT_EQ(r.vector, 13u);
    EXPECT_EQ(r.error_code, PROBE_SEL_CODE_L1D1);
  } else {
    EXPECT_EQ(r.code_bits, 64u);
    EXPECT_EQ(r.cs, PROBE_SEL_CODE_L1D1);
    r = lab.command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE32);  // the way back: compatibility mode
    ASSERT_TRUE(r.ok()) << r.outcome_text();
    EXPECT_EQ(r.code_bits, 32u);
  }
}

TEST(ModeMatrixQemuRun, InjectedUnlistedDeviationFailsTheRun) {
  if (auto why = qemu_missing()) GTEST_SKIP() << *why;
  test::expect_injected_refusal_fails_the_run(OnQemu::options(), paging::Mode::Pae);
}

TEST(ModeMatrixQemuRun, WithoutTheDeviationListQemusLaxChecksAreMismatches) {
  if (auto why = qemu_missing()) GTEST_SKIP() << *why;
  // SDM MOV CR0: NW=1 with CD=0 raises #GP(0); QEMU takes the write.
  test::expect_unlisted_disagreement_is_a_mismatch(OnQemu::options(), paging::Mode::Protected,
                                                   "CR0.NW", false);
}

}  // namespace
}  // namespace pagelab::lab

// The mode-transition matrix on the CPU: every case either agrees with the SDM model,
// is a listed deviation, or was skipped with a reason; the routes that every x86-64
// platform must support agree.
#include <gtest/gtest.h>

#include <memory>
#include <set>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/mode_matrix.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {
namespace {

class ModeMatrixKvm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (kvm::System::unavailable_reason()) return;
    MatrixOptions options;
    options.lab.watchdog = std::chrono::milliseconds(2000);
    result_ = std::make_unique<MatrixResult>(run_mode_matrix(options));
  }
  static void TearDownTestSuite() { result_.reset(); }
  void SetUp() override {
    if (auto why = kvm::System::unavailable_reason()) {
      GTEST_SKIP() << "needs /dev/kvm: " << *why;
    }
    ASSERT_TRUE(result_);
  }
  static const MatrixResult& result() { return *result_; }

  static const RouteResult& route(const std::string& name) {
    for (const auto& r : result_->routes) {
      if (r.name == name) return r;
    }
    throw std::runtime_error("no route " + name);
  }

  static std::unique_ptr<MatrixResult> result_;
};
std::unique_ptr<MatrixResult> ModeMatrixKvm::result_;

std::string describe(const MatrixCase& c) {
  return c.to_json().dump();
}

TEST_F(ModeMatrixKvm, NoUnexplainedMismatch) {
  for (const auto& c : result().cases) {
    EXPECT_NE(c.verdict, CaseVerdict::Mismatch) << describe(c);
  }
  for (const auto& r : result().routes) {
    for (const auto& c : r.steps) {
      EXPECT_NE(c.verdict, CaseVerdict::Mismatch) << describe(c);
    }
  }
  EXPECT_TRUE(result().passed());
}

TEST_F(ModeMatrixKvm, AllowedButRefusedIsAlwaysAListedDeviation) {
  auto check = [](const MatrixCase& c) {
    if (c.expected.allowed && c.observed.executed && c.observed.faulted) {
      EXPECT_EQ(c.verdict, CaseVerdict::Deviation) << describe(c);
      EXPECT_FALSE(c.deviation_id.empty()) << describe(c);
    }
  };
  for (const auto& c : result().cases) check(c);
  for (const auto& r : result().routes) {
    for (const auto& c : r.steps) check(c);
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
  for (const auto* name : {"c", "d", "down"}) {
    const auto& r = route(name);
    EXPECT_EQ(r.overall(), CaseVerdict::Agreed) << name;
    for (const auto& c : r.steps) {
      EXPECT_EQ(c.verdict, CaseVerdict::Agreed) << describe(c);
    }
  }
  // Route (c) ends in 64-bit mode, the way down in real mode.
  EXPECT_EQ(paging::mode_of(route("c").steps.back().observed.after), paging::Mode::Long64_4Level);
  EXPECT_EQ(paging::mode_of(route("down").steps.back().observed.after), paging::Mode::Real);
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

TEST(ModeMatrixKvmRun, InjectedUnlistedDeviationFailsTheRun) {
  if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  MatrixOptions options;
  options.run_routes = false;
  options.only_from = paging::Mode::Long64_4Level;
  options.step_filter = "CR4.PGE";
  int injected = 0;
  options.before_classify = [&injected](MatrixCase& c) {
    if (!c.observed.executed) return;
    // Pretend the CPU refused a write every x86-64 CPU with PGE accepts.
    c.observed.faulted = true;
    c.observed.vector = 13;
    c.observed.error_code = 0;
    c.observed.after = c.before;
    ++injected;
  };
  const auto result = run_mode_matrix(options);
  ASSERT_EQ(injected, 1);
  EXPECT_FALSE(result.passed());
  EXPECT_EQ(result.counts().mismatches, 1);
}

TEST(ModeMatrixKvmRun, WithoutTheDeviationListARefusalIsAMismatch) {
  if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  MatrixOptions options;
  options.run_routes = false;
  options.only_from = paging::Mode::Protected;
  options.step_filter = "CR0.PG 0->1";
  options.deviations.clear();
  const auto result = run_mode_matrix(options);
  ASSERT_EQ(result.cases.size(), 1u);
  const auto& c = result.cases[0];
  ASSERT_TRUE(c.expected.allowed);  // SDM 4.1.2: 32-bit paging
  // Where the platform refuses 32-bit paging this is now unexplained; where it does
  // not, it agrees.
  EXPECT_NE(c.verdict, CaseVerdict::Deviation);
  EXPECT_EQ(c.verdict == CaseVerdict::Mismatch, c.observed.faulted) << describe(c);
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

// The mode-transition matrix on QEMU TCG (-cpu max): the from-states KVM on PVM cannot
// reach (32-bit paging, PAE, 5-level) run there, and every case agrees with the SDM
// model, is a deviation listed for qemu-tcg, or was skipped with a reason.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "pagelab/lab/mode_matrix.hpp"
#include "pagelab/lab/qemu_backend.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/segment_check.hpp"

namespace pagelab::lab {
namespace {

std::optional<std::string> qemu_missing() {
  if (find_qemu_binary()) return std::nullopt;
  return qemu_binary_name() + " is not installed (not found on $PATH)";
}

MatrixOptions qemu_options() {
  MatrixOptions options;
  options.lab.backend = BackendKind::Qemu;
  options.lab.watchdog = std::chrono::milliseconds(5000);
  return options;
}

class ModeMatrixQemu : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (qemu_missing()) return;
    result_ = std::make_unique<MatrixResult>(run_mode_matrix(qemu_options()));
  }
  static void TearDownTestSuite() { result_.reset(); }
  void SetUp() override {
    if (auto why = qemu_missing()) GTEST_SKIP() << "needs QEMU: " << *why;
    ASSERT_TRUE(result_);
  }
  static const MatrixResult& result() { return *result_; }
  static std::vector<const MatrixCase*> all_cases() {
    std::vector<const MatrixCase*> out;
    for (const auto& c : result_->cases) out.push_back(&c);
    for (const auto& r : result_->routes) {
      for (const auto& c : r.steps) out.push_back(&c);
    }
    return out;
  }
  static const RouteResult& route(const std::string& name) {
    for (const auto& r : result_->routes) {
      if (r.name == name) return r;
    }
    throw std::runtime_error("no route " + name);
  }
  static std::unique_ptr<MatrixResult> result_;
};
std::unique_ptr<MatrixResult> ModeMatrixQemu::result_;

std::string describe(const MatrixCase& c) {
  return c.to_json().dump();
}

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
  EXPECT_LT(result().labs_started, executed / 2);
}

TEST(ModeMatrixQemuRun, InjectedUnlistedDeviationFailsTheRun) {
  if (auto why = qemu_missing()) GTEST_SKIP() << "needs QEMU: " << *why;
  auto options = qemu_options();
  options.run_routes = false;
  options.only_from = paging::Mode::Pae;
  options.step_filter = "CR4.PGE";
  int injected = 0;
  options.before_classify = [&injected](MatrixCase& c) {
    if (!c.observed.executed) return;
    // Pretend the CPU refused a write every CPU with PGE accepts (SDM 4.10.2.4).
    c.observed.faulted = true;
    c.observed.vector = paging::ExceptionVector::Gp;
    c.observed.error_code = 0;
    c.observed.after = c.before;
    ++injected;
  };
  const auto result = run_mode_matrix(options);
  ASSERT_EQ(injected, 1);
  EXPECT_FALSE(result.passed());
  EXPECT_EQ(result.counts().mismatches, 1);
}

TEST(ModeMatrixQemuRun, WithoutTheDeviationListQemusLaxChecksAreMismatches) {
  if (auto why = qemu_missing()) GTEST_SKIP() << "needs QEMU: " << *why;
  auto options = qemu_options();
  options.run_routes = false;
  options.only_from = paging::Mode::Protected;
  options.step_filter = "CR0.NW";
  options.deviations.clear();
  const auto result = run_mode_matrix(options);
  ASSERT_EQ(result.cases.size(), 1u);
  const auto& c = result.cases[0];
  ASSERT_FALSE(c.expected.allowed);  // SDM MOV CR0: NW=1 with CD=0 raises #GP(0)
  // Where QEMU takes the write this is now unexplained; where it faults, it agrees.
  EXPECT_NE(c.verdict, CaseVerdict::Deviation);
  EXPECT_EQ(c.verdict == CaseVerdict::Mismatch, !c.observed.faulted) << describe(c);
}

}  // namespace
}  // namespace pagelab::lab

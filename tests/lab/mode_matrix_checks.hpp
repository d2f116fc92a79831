#pragma once
// What the mode-matrix tests on each backend share: one matrix run per test suite
// (a run takes seconds to minutes, and CTest runs every test in its own process),
// skipped with the backend's reason where it cannot run, and the checks that hold on
// every backend.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pagelab/lab/modes/mode_matrix.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/segment_check.hpp"
#include "pagelab/paging/transition.hpp"

namespace pagelab::test {

inline std::string describe(const lab::MatrixCase& c) {
  return c.to_json().dump();
}

// `Backend` says why it cannot run here (`missing()`) and how to run the matrix on it
// (`options()`).
template <class Backend>
class MatrixSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (Backend::missing()) return;
    result_ = std::make_unique<lab::MatrixResult>(lab::run_mode_matrix(Backend::options()));
  }
  static void TearDownTestSuite() { result_.reset(); }
  void SetUp() override {
    if (auto why = Backend::missing()) GTEST_SKIP() << *why;
    ASSERT_TRUE(result_);
  }
  static const lab::MatrixResult& result() { return *result_; }
  // The single-step cases and every route's steps.
  static std::vector<const lab::MatrixCase*> all_cases() {
    std::vector<const lab::MatrixCase*> out;
    for (const auto& c : result_->cases) out.push_back(&c);
    for (const auto& r : result_->routes) {
      for (const auto& c : r.steps) out.push_back(&c);
    }
    return out;
  }
  static const lab::RouteResult& route(const std::string& name) {
    for (const auto& r : result_->routes) {
      if (r.name == name) return r;
    }
    throw std::runtime_error("no route " + name);
  }

 private:
  static inline std::unique_ptr<lab::MatrixResult> result_;
};

// A refusal that no deviation lists fails the run: the CR4.PGE write from `from`, which
// every CPU with PGE accepts (SDM 4.10.2.4), is made to look refused with #GP(0).
inline void expect_injected_refusal_fails_the_run(lab::MatrixOptions options, paging::Mode from) {
  options.run_routes = false;
  options.only_from = from;
  options.step_filter = "CR4.PGE";
  int injected = 0;
  options.before_classify = [&injected](lab::MatrixCase& c) {
    if (!c.observed.executed) return;
    c.observed.faulted = true;
    c.observed.vector = paging::ExceptionVector::Gp;
    c.observed.error_code = 0;
    c.observed.after = c.before;
    ++injected;
  };
  const auto result = lab::run_mode_matrix(options);
  ASSERT_EQ(injected, 1);
  EXPECT_FALSE(result.passed());
  EXPECT_EQ(result.counts().mismatches, 1);
}

// Without the deviation list, the one `step` case from `from` (which the SDM allows or
// refuses, `sdm_allows`) agrees where the platform obeys the SDM and is a mismatch where
// it does not: nothing but the list may explain a disagreement.
inline void expect_unlisted_disagreement_is_a_mismatch(lab::MatrixOptions options,
                                                       paging::Mode from, const std::string& step,
                                                       bool sdm_allows) {
  options.run_routes = false;
  options.only_from = from;
  options.step_filter = step;
  options.deviations.clear();
  const auto result = lab::run_mode_matrix(options);
  ASSERT_EQ(result.cases.size(), 1u);
  const auto& c = result.cases[0];
  ASSERT_EQ(c.expected.allowed, sdm_allows) << describe(c);
  EXPECT_NE(c.verdict, lab::CaseVerdict::Deviation);
  EXPECT_EQ(c.verdict == lab::CaseVerdict::Mismatch, c.observed.faulted == sdm_allows)
      << describe(c);
}

// The probe runs every far jump (each L/D combination, to a landing pad of the width the
// CPU decodes the target as, or to a #GP) and every MOV CR0 in real mode that leaves it
// its code, from every from-state the platform reaches: none is skipped for want of a
// probe command, and each one that ran agrees with the model or is a listed deviation.
// Returns how many ran.
inline int expect_real_mode_writes_and_far_jumps_ran(const lab::MatrixResult& result) {
  int ran = 0;
  for (const auto& c : result.cases) {
    const bool jump = c.step.what == paging::Write::FarJumpCs;
    const bool real_cr0 = c.from == paging::Mode::Real && c.step.what == paging::Write::Cr0;
    if (!jump && !real_cr0) continue;
    if (c.detail.find("from-state unreachable") != std::string::npos) continue;
    // In real mode only a write that turns paging on, with no page table in CR3, stays
    // out (the probe's code would vanish).
    if (real_cr0 && c.expected.allowed && (c.expected.after.cr0 & paging::Cr0::Pg)) {
      EXPECT_EQ(c.verdict, lab::CaseVerdict::Skipped) << describe(c);
      continue;
    }
    EXPECT_TRUE(c.observed.executed) << describe(c);
    EXPECT_NE(c.verdict, lab::CaseVerdict::Mismatch) << describe(c);
    EXPECT_NE(c.verdict, lab::CaseVerdict::Skipped) << describe(c);
    if (c.observed.executed) ++ran;
  }
  return ran;
}

// A far jump to the probe's 16-bit code segment (L=0, D=0) from `from` lands in 16-bit
// code of the same mode (SDM 3.4.5: D=0 selects 16-bit code, in IA-32e mode
// compatibility mode), with CS as the GDT describes it.
inline void expect_16bit_landing(const lab::MatrixResult& result, paging::Mode from) {
  int seen = 0;
  for (const auto& c : result.cases) {
    if (c.from != from || c.step.label != "far jump L=0 D=0") continue;
    ++seen;
    ASSERT_TRUE(c.observed.executed) << describe(c);
    EXPECT_FALSE(c.observed.faulted) << describe(c);
    EXPECT_FALSE(c.observed.after.cs_l) << describe(c);
    EXPECT_FALSE(c.observed.after.cs_d) << describe(c);
    EXPECT_TRUE(c.observed.segment_problem.empty()) << describe(c);
    auto want = from;
    if (from == paging::Mode::Long64_4Level) want = paging::Mode::Compatibility4;
    if (from == paging::Mode::Long64_5Level) want = paging::Mode::Compatibility5;
    EXPECT_EQ(paging::mode_of(c.observed.after), want) << describe(c);
  }
  EXPECT_EQ(seen, 1) << "no far jump L=0 D=0 from " << lab::short_name(from);
}

}  // namespace pagelab::test

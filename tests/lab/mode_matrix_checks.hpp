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

#include "pagelab/lab/mode_matrix.hpp"
#include "pagelab/paging/segment_check.hpp"

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

}  // namespace pagelab::test

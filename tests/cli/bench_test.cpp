// `pagelab bench`: one run prints every ratio the issue asks for, as text and JSON;
// bad options are usage errors (exit 2). No assertion on the measured times.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "pagelab/kvm/system.hpp"

namespace pagelab::test {
namespace {

TEST(CliBench, JsonHasEveryRatioAndNoDisagreement) {
  if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  const auto r = run_pagelab({"bench", "--json", "--batch", "200", "--rounds", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["workloads"].size(), 7u);
  for (const auto& w : j["workloads"]) {
    EXPECT_EQ(w["accesses"], 200) << w.dump();
    EXPECT_EQ(w["vm_exits"], 1) << w.dump();  // one batch, one exit
    EXPECT_EQ(w["disagreements"], 0) << w.dump();
    EXPECT_GT(w["checked_per_second"].get<double>(), 0.0);
  }
  EXPECT_EQ(j["accesses_per_vm_exit"].get<double>(), 200.0);
  EXPECT_TRUE(j["exception_cost_us"].contains("cpl3"));
  EXPECT_TRUE(j["exception_cost_us"].contains("cpl0"));
  EXPECT_TRUE(j.contains("cpl3_fault_over_exception_cost"));
  EXPECT_TRUE(j.contains("cpl_round_trip_us"));
  const auto share = j["oracle_share"].get<double>();
  EXPECT_GE(share, 0.0);
  EXPECT_LE(share, 1.0);
}

TEST(CliBench, TextNamesTheRatios) {
  if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  const auto r = run_pagelab({"bench", "--batch", "100", "--rounds", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("accesses per VM exit: 100"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("in-guest exception cost"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("oracle's share"), std::string::npos) << r.out;
}

TEST(CliBench, BadBatchSizeIsAUsageError) {
  EXPECT_EQ(run_pagelab({"bench", "--batch", "many"}).status, 2);
  EXPECT_EQ(run_pagelab({"bench", "--rounds", "0"}).status, 2);
}

}  // namespace
}  // namespace pagelab::test

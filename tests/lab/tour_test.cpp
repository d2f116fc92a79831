#include <gtest/gtest.h>

#include "lab/lab_fixture.hpp"
#include "pagelab/lab/tour/tour.hpp"

namespace pagelab::test {
namespace {

using Tour = LabTest;

const lab::TourStop* find_stop(const lab::Tour& t, const std::string& prefix) {
  for (const auto& s : t.stops) {
    if (s.mode.rfind(prefix, 0) == 0) return &s;
  }
  return nullptr;
}

TEST_F(Tour, EveryModeIsEnteredOrRefusedWithAReason) {
  const auto tour = lab::run_tour(lab());
  EXPECT_TRUE(tour.ok()) << tour.to_json().dump(2);
  ASSERT_GE(tour.stops.size(), 7u);
  for (const auto& s : tour.stops) {
    EXPECT_NE(s.outcome, lab::StopOutcome::Failed) << s.mode << ": " << s.reason;
    if (s.outcome != lab::StopOutcome::Entered) {
      EXPECT_FALSE(s.reason.empty()) << s.mode;
    }
  }
  // Long mode with 4-level paging is what every x86-64 KVM runs.
  const auto* four = find_stop(tour, "IA-32e mode, 4-level");
  ASSERT_NE(four, nullptr);
  EXPECT_EQ(four->outcome, lab::StopOutcome::Entered);
  EXPECT_EQ(tour.stops.back().outcome, lab::StopOutcome::Entered);  // back in real mode
}

TEST_F(Tour, RefusalsMatchWhatThePlatformReports) {
  const auto tour = lab::run_tour(lab());
  const auto* five = find_stop(tour, "IA-32e mode, 5-level");
  ASSERT_NE(five, nullptr);
  // 5-level is entered exactly when CPUID offers LA57.
  EXPECT_EQ(five->outcome == lab::StopOutcome::Entered, lab().cpu().has(lab::cpuid::La57))
      << five->reason;
}

TEST_F(Tour, JsonNamesEveryStop) {
  const auto j = lab::run_tour(lab()).to_json();
  EXPECT_EQ(j["backend"], "kvm");
  ASSERT_TRUE(j["stops"].is_array());
  for (const auto& s : j["stops"]) {
    EXPECT_TRUE(s.contains("mode"));
    EXPECT_TRUE(s.contains("outcome"));
    EXPECT_FALSE(s["steps"].empty());
  }
}

}  // namespace
}  // namespace pagelab::test

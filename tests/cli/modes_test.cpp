// `pagelab modes`, run as the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "pagelab/kvm/system.hpp"

namespace pagelab::test {
namespace {

TEST(ModesCli, UnknownBackendIsBadInput) {
  const auto r = run_pagelab({"modes", "--backend", "bochs"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "unknown backend 'bochs'")) << r.err;
}

TEST(ModesCli, UnknownFromModeIsBadInput) {
  const auto r = run_pagelab({"modes", "--from", "v86"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "unknown mode 'v86'")) << r.err;
}

class ModesKvmCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  }
};

TEST_F(ModesKvmCli, FullRunCompletesWithoutUnexplainedMismatches) {
  const auto r = run_pagelab({"modes", "--quiet"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, " 0 unexplained mismatches")) << r.out;
  EXPECT_TRUE(contains(r.out, "== route c:")) << r.out;
}

TEST_F(ModesKvmCli, JsonListsEveryCaseWithBackendAndSummary) {
  const auto r = run_pagelab({"modes", "--json", "--quiet"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "kvm");
  int counted = 0;
  for (const auto& c : j["cases"]) {
    EXPECT_EQ(c["backend"], "kvm");
    EXPECT_TRUE(c.contains("rule"));
    EXPECT_TRUE(c.contains("verdict"));
    ++counted;
  }
  for (const auto& route : j["routes"]) counted += static_cast<int>(route["steps"].size());
  const auto& s = j["summary"];
  EXPECT_EQ(s["total"].get<int>(), counted);
  EXPECT_EQ(s["agreed"].get<int>() + s["deviations"].get<int>() + s["mismatches"].get<int>() +
                s["skipped"].get<int>(),
            counted);
  EXPECT_EQ(s["mismatches"], 0);
}

TEST_F(ModesKvmCli, FromAndStepFiltersNarrowTheRun) {
  const auto r =
      run_pagelab({"modes", "--json", "--quiet", "--from", "long64", "--step", "CR0.PG"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_FALSE(j["cases"].empty());
  for (const auto& c : j["cases"]) {
    EXPECT_EQ(c["from"], "long64");
    EXPECT_TRUE(contains(c["transition"].get<std::string>(), "CR0.PG"));
  }
  EXPECT_TRUE(j["routes"].empty());
}

}  // namespace
}  // namespace pagelab::test

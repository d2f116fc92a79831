// `pagelab modes`, run as the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"

namespace pagelab::test {
namespace {

TEST(ModesCli, UnknownBackendIsBadInput) {
  const auto r = run_pagelab({"modes", "--backend", "bochs"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "unknown backend 'bochs'")) << r.err;
}

TEST(ModesCli, UnknownBackendNamesTheChoicesOnOneLine) {
  const auto r = run_pagelab({"modes", "--backend", "tcg"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "kvm, qemu, auto or all")) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST(ModesCli, UnknownFromModeIsBadInput) {
  const auto r = run_pagelab({"modes", "--from", "v86"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "unknown mode 'v86'")) << r.err;
}

class ModesKvmCli : public KvmTest {};

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
  const auto& s = j["counts"];
  EXPECT_EQ(j["total"].get<int>(), counted);
  EXPECT_EQ(s["passed"].get<int>() + s["known-deviation"].get<int>() + s["failed"].get<int>() +
                s["skipped"].get<int>(),
            counted);
  EXPECT_EQ(s["failed"], 0);
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

class ModesQemuCli : public QemuTest {};

TEST_F(ModesQemuCli, JsonNamesTheBackendInTheResultAndEveryCase) {
  const auto r = run_pagelab(
      {"modes", "--backend", "qemu", "--json", "--quiet", "--from", "pae", "--step", "CR4.PGE"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "qemu-tcg");
  EXPECT_EQ(j["platform"], "qemu-tcg");
  ASSERT_EQ(j["cases"].size(), 1u);
  const auto& c = j["cases"][0];
  EXPECT_EQ(c["backend"], "qemu-tcg");
  EXPECT_EQ(c["from"], "pae");
  EXPECT_EQ(c["verdict"], "passed") << c.dump();  // SDM 4.10.2.4: PGE may be toggled
}

TEST_F(ModesQemuCli, TextNamesTheBackendAndAQemuDeviationWithItsReproducer) {
  const auto r = run_pagelab({"modes", "--backend", "qemu", "--quiet", "--no-routes", "--from",
                              "protected", "--step", "CR0.NW"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "(backend qemu-tcg)")) << r.out;
  EXPECT_TRUE(contains(r.out, "cases on qemu-tcg:")) << r.out;
  EXPECT_TRUE(contains(r.out, "qemu-cr0-nw-without-cd-accepted")) << r.out;
  EXPECT_TRUE(contains(r.out, "reproduce: pagelab modes --backend qemu")) << r.out;
}

TEST_F(ModesQemuCli, AllRunsEveryAvailableBackendSideBySide) {
  const auto r = run_pagelab({"modes", "--backend", "all", "--json", "--quiet", "--no-routes",
                              "--from", "long64", "--step", "CR4.PGE"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "all");
  std::vector<std::string> names;
  for (const auto& res : j["results"]) names.push_back(res["backend"]);
  const bool kvm = !kvm::System::unavailable_reason();
  ASSERT_EQ(names.size(), kvm ? 2u : 1u);
  EXPECT_EQ(names.back(), "qemu-tcg");
  ASSERT_EQ(j["comparison"].size(), 1u);
  const auto& row = j["comparison"][0];
  EXPECT_EQ(row["from"], "long64");
  for (const auto& name : names) {
    ASSERT_TRUE(row["backends"].contains(name)) << row.dump();
    EXPECT_EQ(row["backends"][name]["verdict"], "passed") << row.dump();
  }
}

}  // namespace
}  // namespace pagelab::test

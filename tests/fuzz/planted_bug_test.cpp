// A judge made wrong in one rule (the test-only planted bug) is caught: a short campaign
// on QEMU reports a finding, shrunk to a reproducer of at most 15 lines that fails
// `pagelab run --backend qemu` the same way under the same planted bug.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "pagelab/fuzz/campaign.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/paging/planted_bug.hpp"

namespace pagelab::fuzz {
namespace {

class FuzzPlantedBug : public test::QemuTest {
 protected:
  void TearDown() override { paging::set_planted_bug(paging::PlantedBug::None); }
};

TEST_F(FuzzPlantedBug, IgnoringTheUserBitIsFoundShrunkAndReplayed) {
  const test::TempDir dir;
  paging::set_planted_bug(paging::PlantedBug::IgnoreUserBit);
  CampaignOptions o;
  o.seed = 1;
  o.cases = 1024;
  o.profile = Profile::Rights;
  o.modes = {paging::PagingMode::Level4};
  o.findings = dir.path() / "findings";
  std::filesystem::create_directories(*o.findings);
  std::vector<Finding> findings;
  o.on_finding = [&](const Finding& f) { findings.push_back(f); };
  const auto summary = run_campaign(o);
  paging::set_planted_bug(paging::PlantedBug::None);
  EXPECT_EQ(summary.cases, 1024u);
  // The planted bug's shape: a user access the CPU refuses with U/S (a #PF with P and U
  // set) that the wrong judge allows.
  const Finding* planted = nullptr;
  for (const auto& f : findings) {
    if (f.kind == "oracle" && f.rule.find("-U: pf:0x") != std::string::npos &&
        f.rule.ends_with(" vs ok")) {
      planted = &f;
      break;
    }
  }
  ASSERT_NE(planted, nullptr) << findings.size() << " findings, none of the planted bug";
  EXPECT_LE(planted->lines, 15u) << planted->reproducer;
  ASSERT_TRUE(planted->file);
  EXPECT_EQ(test::slurp(*planted->file), planted->reproducer);
  EXPECT_NE(planted->reproducer.find("expect ok"), std::string::npos) << planted->reproducer;

  // The replay fails the same way: the access the judge allows faults on the CPU.
  test::RunSetup setup;
  setup.env = {{"PAGELAB_PLANTED_BUG", "ignore-us"}};
  const auto r = test::run_pagelab({"run", "--backend", "qemu", planted->file->string()}, setup);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(test::contains(r.out, "FAIL")) << r.out;
  const auto code = planted->rule.substr(
      planted->rule.find("pf:") + 3,
      planted->rule.find(' ', planted->rule.find("pf:")) - planted->rule.find("pf:") - 3);
  EXPECT_TRUE(test::contains(r.out, "#PF error code " + code)) << code << "\n" << r.out;
  EXPECT_TRUE(test::contains(r.err, "PLANTED BUG")) << r.err;
}

}  // namespace
}  // namespace pagelab::fuzz

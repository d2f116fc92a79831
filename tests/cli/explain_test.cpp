// `pagelab explain` and `pagelab decode pte`, run as the real binary.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include "cli/run_pagelab.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using pagelab::test::ProcessResult;
using pagelab::test::run_pagelab;

TEST(ExplainCli, WorkedExampleShowsIndicesAndPhysicalAddress) {
  const ProcessResult r = run_pagelab({"explain", "0x803FE7F5CE"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("0xc5ce"), std::string::npos) << r.out;
  // Index column of each level: PML4 1, PDPT 0, PD 511, PT 127.
  EXPECT_NE(r.out.find("index    1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index    0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index  511"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("index  127"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("P4D folded"), std::string::npos) << r.out;
}

TEST(ExplainCli, JsonCarriesTheBreakdownAndOutcome) {
  const ProcessResult r = run_pagelab({"explain", "0x803FE7F5CE", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["outcome"]["kind"], "ok");
  EXPECT_EQ(j["outcome"]["physical"], "0xc5ce");
  ASSERT_EQ(j["breakdown"].size(), 4u);
  EXPECT_EQ(j["breakdown"][2]["index"], 511);
  EXPECT_EQ(j["offset"], "0x5ce");
}

TEST(ExplainCli, UnmappedUserWriteReportsPageFault) {
  const ProcessResult r = run_pagelab({"explain", "0x803FE01000", "--write", "--user", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["outcome"]["kind"], "page-fault");
  EXPECT_EQ(j["outcome"]["error_code"], "0x6");  // not present, W, U
}

TEST(ExplainCli, NonCanonicalIsGeneralProtection) {
  const ProcessResult r = run_pagelab({"explain", "0x0000800000000000"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("#GP"), std::string::npos) << r.out;
}

TEST(ExplainCli, MalformedAddressExitsTwoWithOneLine) {
  const ProcessResult r = run_pagelab({"explain", "zzz"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(ExplainCli, UnknownModeExitsTwo) {
  EXPECT_EQ(run_pagelab({"explain", "0x1000", "--mode", "7"}).status, 2);
}

TEST(ExplainCli, TablesFileIsExplained) {
  const pagelab::test::TempDir dir;
  const auto path = dir.write(
      "tables", "# 32-bit paging, one 4 MiB page\nmode 32\ncr3 0x1000\n0x1004 0x00400083 32\n");
  const ProcessResult r = run_pagelab({"explain", "0x00412345", "--tables", path, "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["outcome"]["physical"], "0x412345");
  EXPECT_EQ(j["outcome"]["page_size"], "4M");
}

TEST(DecodePteCli, JsonParses) {
  const ProcessResult r =
      run_pagelab({"decode", "pte", "0x8000000000000867", "--mode", "4", "--level", "1", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["flags"]["XD"], true);
  EXPECT_EQ(j["flags"]["D"], true);
  EXPECT_EQ(j["flags"]["G"], false);
  EXPECT_EQ(j["page_size"], "4K");
  EXPECT_TRUE(j["reserved_violations"].empty());
}

TEST(DecodePteCli, LevelFiveDoesNotExistInPae) {
  const ProcessResult r = run_pagelab({"decode", "pte", "1", "--mode", "pae", "--level", "5"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(DecodePteCli, FoldedLinuxLevelIsRejected) {
  EXPECT_EQ(run_pagelab({"decode", "pte", "1", "--mode", "4", "--level", "p4d"}).status, 2);
  EXPECT_EQ(run_pagelab({"decode", "pte", "1", "--mode", "5", "--level", "p4d"}).status, 0);
}

}  // namespace

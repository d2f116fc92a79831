// `pagelab run FILE:LINE` (one case, with the history before it), `-j N` (files in
// parallel, output in input order), and what is bad input (exit 2 before anything
// runs): a directory, an empty file, a scenario with no access, a LINE with no access.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"

namespace pagelab::test {
namespace {

using nlohmann::json;

TEST(RunLine, OneCaseKeepsTheHistoryBeforeIt) {
  // stale_translation.pgl:12 reads after the PTE changed without an invalidation. The read
  // on line 8 cached the old translation, so SDM 4.10.4.1 allows the old and the new one;
  // without that history only the new one would be allowed.
  const auto r =
      run_pagelab({"run", "--oracle-only", "--json", example("stale_translation.pgl") + ":12"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const auto j = json::parse(r.out);
  ASSERT_EQ(j["scenarios"][0]["accesses"].size(), 1u);
  const auto& a = j["scenarios"][0]["accesses"][0];
  EXPECT_EQ(a["line"], 12);
  ASSERT_EQ(a["allowed"].size(), 2u) << a.dump();
  EXPECT_EQ(a["allowed"][0]["value"], "0x2222");  // the fresh walk: the new frame
  EXPECT_EQ(a["allowed"][1]["value"], "0x1111");  // the cached one
  EXPECT_EQ(a["allowed"][1]["stale"], true);
  EXPECT_EQ(j["counts"]["passed"], 1);
  // An `expect` line names its access.
  const auto e =
      run_pagelab({"run", "--oracle-only", "--json", example("stale_translation.pgl") + ":13"});
  EXPECT_EQ(json::parse(e.out)["scenarios"][0]["accesses"][0]["line"], 12) << e.out;
}

TEST(RunLine, ALineWithoutAnAccessIsBadInput) {
  const auto r = run_pagelab({"run", "--oracle-only", example("stale_translation.pgl") + ":3"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err,
                       "stale_translation.pgl:3: no access on that line (accesses are on "
                       "lines 8, 12, 16, 21, 24)"))
      << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(RunLine, OnlyTheChosenCaseCanFail) {
  const TempDir dir;
  // Line 3's expectation is wrong; line 5 is right. Running line 5 alone passes (line
  // 3 runs for its history, without its expectation); running line 3 fails.
  const auto f = dir.write("two.pgl",
                           "map 0x4000_0000 -> 0x20_0000 4k w\n"
                           "poke 0x20_0000 0x1111\n"
                           "read 0x4000_0000\n"
                           "expect value 0x2222\n"
                           "read 0x4000_0000\n"
                           "expect value 0x1111\n");
  EXPECT_EQ(run_pagelab({"run", "--oracle-only", f + ":5"}).status, 0);
  const auto bad = run_pagelab({"run", "--oracle-only", f + ":3"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_TRUE(contains(bad.out, "0 passed, 1 failed")) << bad.out;
}

TEST(RunInput, DirectoryEmptyFileAndNoAccessAreBadInputBeforeAnythingRuns) {
  const TempDir dir;
  const auto empty = dir.write("empty.pgl", "");
  const auto no_access = dir.write("setup.pgl", "mode 4level\nmap 0x4000_0000 4k\n");
  for (const auto& bad : {dir.path().string(), empty, no_access}) {
    // The good file comes first: nothing may run when a later one is bad.
    const auto r = run_pagelab({"run", "--oracle-only", example("worked_example.pgl"), bad});
    EXPECT_EQ(r.status, 2) << bad << r.err;
    EXPECT_EQ(r.out, "") << bad;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_TRUE(contains(run_pagelab({"run", "--oracle-only", empty}).err, "the file is empty"));
  EXPECT_TRUE(
      contains(run_pagelab({"run", "--oracle-only", dir.path().string()}).err, "is a directory"));
}

TEST(RunJobs, ParallelOutputIsInInputOrderAndTheSame) {
  auto args = example_files();
  args.insert(args.begin(), {"run", "--oracle-only"});
  const auto one = run_pagelab(args);
  args.insert(args.begin() + 1, {"-j", "4"});
  const auto four = run_pagelab(args);
  EXPECT_EQ(one.status, 0);
  EXPECT_EQ(four.status, 0);
  EXPECT_EQ(one.out, four.out);
  EXPECT_EQ(run_pagelab({"run", "--oracle-only", "-j", "0", example("worked_example.pgl")}).status,
            2);
}

class RunJobsQemu : public QemuTest {};

TEST_F(RunJobsQemu, OneMachinePerWorker) {
  const std::vector<std::string> files = {example("nx_fetch.pgl"), example("worked_example.pgl"),
                                          example("stale_translation.pgl")};
  std::vector<std::string> args = {"run", "--backend", "qemu", "--tap"};
  args.insert(args.end(), files.begin(), files.end());
  const auto one = run_pagelab(args);
  args.insert(args.begin() + 1, {"-j", "3"});
  const auto three = run_pagelab(args);
  EXPECT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(three.status, 0) << three.err;
  EXPECT_EQ(one.out, three.out);
}

// One file at a time, the readable report is printed while the file runs (only its head
// is kept); with -j it is kept and printed whole. Both must say the same.
TEST_F(RunJobsQemu, TheReportPrintedAsItRunsIsTheWholeReport) {
  std::vector<std::string> args = {"run",
                                   "--backend",
                                   "qemu",
                                   example("nx_fetch.pgl"),
                                   example("stale_translation.pgl"),
                                   example("accessed_dirty.pgl")};
  const auto streamed = run_pagelab(args);
  args.insert(args.begin() + 1, {"-j", "2"});
  const auto kept = run_pagelab(args);
  EXPECT_EQ(streamed.status, 0) << streamed.err;
  EXPECT_EQ(kept.status, 0) << kept.err;
  EXPECT_EQ(streamed.out, kept.out);
}

}  // namespace
}  // namespace pagelab::test

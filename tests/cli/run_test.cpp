// `pagelab run`: exit codes 0/1/2, the readable diff of a wrong expectation, valid JSON,
// and every shipped example.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "pagelab/lab/backend/backend.hpp"

namespace pagelab::test {
namespace {

// Scenario files of one test, removed when the test ends.
class TempFiles {
 public:
  std::string operator()(const std::string& name, const std::string& text) const {
    return dir_.write(name, text);
  }

 private:
  TempDir dir_;
};

const char* const WrongValue =
    "# a deliberately wrong expectation\n"
    "map 0x4000_0000 -> 0x20_0000 4k w\n"
    "poke 0x20_0000 0x1111\n"
    "read 0x4000_0000\n"
    "expect value 0x2222\n";

TEST(RunCommand, ExamplesPassWithTheOracleAlone) {
  auto args = example_files();
  ASSERT_GE(args.size(), 10u);
  const auto files = args.size();
  args.insert(args.begin(), {"run", "--oracle-only"});
  const auto r = run_pagelab(args);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(
      contains(r.out, " 0 failed, 0 skipped (" + std::to_string(files) + " files, on oracle)"))
      << r.out;
}

// Each example on its own, on the CPU (skipped cases say why; none may fail).
class RunExample : public ::testing::TestWithParam<std::string> {};

TEST_P(RunExample, PassesOrSkipsWithAReason) {
  const auto r = run_pagelab({"run", GetParam()});
  if (r.status == 4) GTEST_SKIP() << "no backend here: " << r.err;
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, " 0 failed")) << r.out;
  if (contains(r.out, "skip ")) {
    EXPECT_TRUE(contains(r.out, "skipped: ")) << r.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Examples, RunExample, ::testing::ValuesIn(example_files()),
                         [](const auto& info) {
                           return std::filesystem::path(info.param).stem().string();
                         });

TEST(RunCommand, WrongExpectationExitsOneWithADiff) {
  const TempFiles write_temp;
  const auto file = write_temp("wrong.pgl", WrongValue);
  for (const char* mode : {"--oracle-only", "--verbose"}) {
    const auto r = run_pagelab({"run", mode, file});
    EXPECT_EQ(r.status, 1) << r.out << r.err;
    EXPECT_TRUE(contains(r.out, "FAIL")) << r.out;
    EXPECT_TRUE(contains(r.out, ":5: expect value 0x2222")) << r.out;
    EXPECT_TRUE(contains(r.out, "expected: value 0x2222")) << r.out;
    EXPECT_TRUE(contains(r.out, "value 0x1111")) << r.out;  // what the oracle (and CPU) say
    EXPECT_TRUE(contains(r.out, "1 failed")) << r.out;
  }
}

// On a CPU the text report judges without words, but a failed expectation is printed
// with the reason and the walk behind the oracle's answer, as without a CPU.
class RunQemu : public QemuTest {};

TEST_F(RunQemu, AFailedExpectationShowsTheWalkAndWhy) {
  const TempFiles write_temp;
  const auto file = write_temp("ro.pgl",
                               "cr0 +wp\n"
                               "map 0x4000_0000 -> 0x20_0000 4k\n"
                               "write 0x4000_0000 value 0x1234\n"
                               "expect ok\n");
  const auto r = run_pagelab({"run", "--backend", "qemu", file});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "because:  supervisor write to a read-only page")) << r.out;
  EXPECT_TRUE(contains(r.out, "PTE   [  0] @ ")) << r.out;
}

TEST(RunCommand, ParseErrorExitsTwoWithFileLineColumn) {
  const TempFiles write_temp;
  const auto file = write_temp("bad.pgl", "map 0x4000_0000 4k\nread 0x4000_0000 sizee 8\n");
  const auto r = run_pagelab({"run", "--oracle-only", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, file + ":2:18: unexpected 'sizee'")) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(RunCommand, MissingFileExitsTwo) {
  const auto r = run_pagelab({"run", "/nonexistent/none.pgl"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "/nonexistent/none.pgl")) << r.err;
}

TEST(RunCommand, JsonIsValidAndCounts) {
  const TempFiles write_temp;
  const auto wrong = write_temp("wrong_json.pgl", WrongValue);
  const auto r = run_pagelab(
      {"run", "--oracle-only", "--json", PAGELAB_SOURCE_DIR "/examples/worked_example.pgl", wrong});
  EXPECT_EQ(r.status, 1);
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "oracle");
  ASSERT_EQ(j["scenarios"].size(), 2u);
  EXPECT_EQ(j["scenarios"][0]["verdict"], "passed");
  EXPECT_EQ(j["scenarios"][0]["counts"]["passed"], 3);
  EXPECT_EQ(j["scenarios"][1]["verdict"], "failed");
  EXPECT_EQ(j["counts"]["failed"], 1);
  const auto& check = j["scenarios"][1]["accesses"][0]["checks"][0];
  EXPECT_EQ(check["verdict"], "failed");
  EXPECT_TRUE(contains(check["diff"].get<std::string>(), "0x1111"));
}

TEST(RunCommand, JsonOnTheCpu) {
  const auto r = run_pagelab({"run", "--json", PAGELAB_SOURCE_DIR "/examples/worked_example.pgl"});
  if (r.status == 4) GTEST_SKIP() << "no backend here";
  EXPECT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  // The default backend is auto: KVM where /dev/kvm works, else QEMU.
  EXPECT_EQ(j["backend"], std::string(lab::backend_name(lab::BackendKind::Auto)));
  EXPECT_EQ(j["counts"]["failed"], 0);
}

TEST(RunCommand, HelpDocumentsTheLanguage) {
  const auto r = run_pagelab({"run", "--help"});
  EXPECT_EQ(r.status, 0);
  for (const char* s :
       {"expect pf err=CODE", "set entry", "recursive INDEX", "--oracle-only", "Exit status"}) {
    EXPECT_TRUE(contains(r.out, s)) << s;
  }
}

}  // namespace
}  // namespace pagelab::test

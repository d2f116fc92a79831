// Bad input to `pagelab matrix`: one line on stderr, exit 2, nothing run.
#include <gtest/gtest.h>

#include "cli/run_pagelab.hpp"

namespace pagelab::test {
namespace {

void expect_usage_error(const std::vector<std::string>& args, const std::string& says) {
  const auto r = run_pagelab(args);
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(says), std::string::npos) << r.err;
}

TEST(MatrixCli, UnknownMode) {
  expect_usage_error({"matrix", "--backend", "qemu", "--mode", "6level"}, "unknown mode '6level'");
}

TEST(MatrixCli, CaseNamingNoCase) {
  expect_usage_error({"matrix", "--backend", "qemu", "--case", "4level-4k pml4:p read cpl0"},
                     "names no case");
  expect_usage_error({"matrix", "--backend", "qemu", "--case", "nomode read"},
                     "starts with its mode");
  expect_usage_error(
      {"matrix", "--backend", "qemu", "--case", "32bit-4k pd:p,rw,us pt:p,rw,us,bogus read cpl0"},
      "'bogus' is not an entry flag");
}

TEST(MatrixCli, ShardBeyondItsCount) {
  expect_usage_error({"matrix", "--backend", "qemu", "--shard", "3/2"}, "--shard");
}

TEST(MatrixCli, EmptySelection) {
  // 1,848 cases, every 5,000th: only case 0, which shard 2 of 2 does not own.
  expect_usage_error(
      {"matrix", "--backend", "qemu", "--mode", "32bit-4m", "--sample", "1/5000", "--shard", "2/2"},
      "the selection is empty");
}

TEST(MatrixCli, BadSampleAndExportWithoutCase) {
  expect_usage_error({"matrix", "--backend", "qemu", "--sample", "1/0"}, "--sample");
  expect_usage_error({"matrix", "--backend", "qemu", "--export", "x.pgl"}, "--case");
}

TEST(MatrixCli, ListNeedsNoBackend) {
  const auto r = run_pagelab({"matrix", "--list", "--mode", "32bit-4k"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("32bit-4k"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("walk-ends-at-fault"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pagelab::test

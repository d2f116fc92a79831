// --tap and --junit (case_report.hpp): TAP13 as a TAP consumer reads it (version, plan,
// one numbered test point per case, SKIP and TODO directives, a YAML block under a
// failure), and JUnit XML parsed by Python's xml.etree, on the writers and end to end.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>
#include <sstream>

#include "case_report.hpp"
#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"

namespace pagelab::test {
namespace {

using cli::CaseLine;
using lab::report::CaseVerdict;

struct TapPoint {
  bool ok = false;
  unsigned number = 0;
  std::string description, directive;  // directive: "SKIP ..." / "TODO ..."
};

// A strict reader of the TAP13 the tools emit: fails the test on any line it does not
// know (outside YAML blocks), on a wrong plan or on numbers out of order.
std::vector<TapPoint> parse_tap(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "TAP version 13");
  std::getline(in, line);
  std::smatch m;
  EXPECT_TRUE(std::regex_match(line, m, std::regex(R"(1\.\.(\d+))"))) << line;
  const unsigned plan = m.empty() ? 0 : std::stoul(m[1]);
  std::vector<TapPoint> points;
  bool in_yaml = false;
  const std::regex point(R"((ok|not ok) (\d+) - (.*?)(?: # (SKIP|TODO)(?: (.*))?)?)");
  while (std::getline(in, line)) {
    if (in_yaml) {
      if (line == "  ...") in_yaml = false;
      continue;
    }
    if (line == "  ---") {
      EXPECT_FALSE(points.empty());
      in_yaml = true;
      continue;
    }
    if (!std::regex_match(line, m, point)) {
      ADD_FAILURE() << "not a TAP line: " << line;
      continue;
    }
    TapPoint p;
    p.ok = m[1] == "ok";
    p.number = std::stoul(m[2]);
    p.description = m[3];
    if (m[4].matched)
      p.directive = std::string(m[4]) + (m[5].matched ? " " + std::string(m[5]) : "");
    EXPECT_EQ(p.number, points.size() + 1);
    points.push_back(p);
  }
  EXPECT_FALSE(in_yaml) << "a YAML block never ended";
  EXPECT_EQ(points.size(), plan);
  return points;
}

// Parses `path` with Python's xml.etree and prints "tests failures skipped cases" for
// the <testsuites> root; empty when Python is missing.
std::string junit_summary(const std::string& path) {
  if (std::system("python3 -c '' 2>/dev/null") != 0) return "";
  const TempDir dir;
  const auto out = (dir.path() / "summary").string();
  const std::string cmd =
      "python3 -c 'import sys, xml.etree.ElementTree as E\n"
      "r = E.parse(sys.argv[1]).getroot()\n"
      "assert r.tag == \"testsuites\"\n"
      "cases = r.findall(\"testsuite/testcase\")\n"
      "f = sum(1 for c in cases if c.find(\"failure\") is not None)\n"
      "s = sum(1 for c in cases if c.find(\"skipped\") is not None)\n"
      "k = sum(1 for c in cases if c.find(\"properties/property[@name=\\\"known-deviation\\\"]\") "
      "is not None)\n"
      "assert int(r.get(\"tests\")) == len(cases) and int(r.get(\"failures\")) == f and "
      "int(r.get(\"skipped\")) == s\n"
      "print(len(cases), f, s, k)' " +
      path + " > " + out;
  if (std::system(cmd.c_str()) != 0) return "python rejected " + slurp(path);
  auto s = slurp(out);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

TEST(TapWriter, EveryVerdictHasItsForm) {
  const std::vector<CaseLine> cases = {
      {"a.pgl", "a.pgl:3 read 0x1000", CaseVerdict::Passed, "", "", "", ""},
      {"a.pgl", "a.pgl:5 read 0x2000", CaseVerdict::Failed, "an expectation was not met", "",
       "expected: #PF\nobserved: ok", "pagelab run a.pgl:5"},
      {"a.pgl", "a.pgl:7 fetch 0x3000 # not a directive", CaseVerdict::Skipped, "needs LA57", "",
       "", ""},
      {"b.pgl", "b.pgl:2 read 0x4000", CaseVerdict::KnownDeviation, "the CPU did x",
       "tcg-reserved-bit-error-code-without-p", "", "pagelab run b.pgl:2"}};
  const auto points = parse_tap(cli::tap_document(cases));
  ASSERT_EQ(points.size(), 4u);
  EXPECT_TRUE(points[0].ok);
  EXPECT_EQ(points[0].directive, "");
  EXPECT_FALSE(points[1].ok);
  EXPECT_EQ(points[1].directive, "");
  EXPECT_TRUE(points[2].ok);
  EXPECT_EQ(points[2].directive, "SKIP needs LA57");
  EXPECT_EQ(points[2].description, "a.pgl:7 fetch 0x3000 \\# not a directive");
  EXPECT_FALSE(points[3].ok);
  EXPECT_EQ(points[3].directive, "TODO known deviation tcg-reserved-bit-error-code-without-p");

  const TempDir dir;
  const auto path = (dir.path() / "junit.xml").string();
  cli::write_junit(path, "t", cases);
  const auto summary = junit_summary(path);
  if (summary.empty()) GTEST_SKIP() << "needs python3 to parse the XML";
  EXPECT_EQ(summary, "4 1 1 1");  // 4 cases, 1 failure, 1 skipped, 1 known deviation
}

TEST(RunTap, OracleRunIsOnePointPerAccessAndAFailureIsNotOk) {
  const TempDir dir;
  const auto wrong = dir.write("wrong.pgl",
                               "map 0x4000_0000 -> 0x20_0000 4k w\n"
                               "poke 0x20_0000 0x1111\n"
                               "read 0x4000_0000\n"
                               "expect value 0x2222\n");
  const auto junit = (dir.path() / "run.xml").string();
  const auto r = run_pagelab(
      {"run", "--oracle-only", "--tap", "--junit", junit, example("worked_example.pgl"), wrong});
  EXPECT_EQ(r.status, 1) << r.err;
  const auto points = parse_tap(r.out);
  ASSERT_EQ(points.size(), 4u);  // 3 accesses in the worked example, 1 in wrong.pgl
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(points[i].ok) << points[i].description;
  EXPECT_FALSE(points[3].ok);
  EXPECT_EQ(points[3].description, wrong + ":3 read 0x40000000 size 8 sup");
  EXPECT_TRUE(contains(r.out, "  reproducer: \"pagelab run " + wrong + ":3 --oracle-only\""));
  const auto summary = junit_summary(junit);
  if (!summary.empty()) {
    EXPECT_EQ(summary, "4 1 0 0");
  }
  EXPECT_EQ(run_pagelab({"run", "--oracle-only", "--tap", "--json", wrong}).status, 2);
}

class TapQemu : public QemuTest {};

TEST_F(TapQemu, KnownDeviationIsATodoAndModesSkipsHaveTheirReason) {
  // QEMU TCG reports a reserved-bit #PF without P (a listed deviation): TODO, not a failure.
  const TempDir dir;
  const auto junit = (dir.path() / "run.xml").string();
  const auto r =
      run_pagelab({"run", "--backend", "qemu", "--tap", "--junit", junit, example("nx_fetch.pgl")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  const auto points = parse_tap(r.out);
  ASSERT_EQ(points.size(), 5u);
  EXPECT_EQ(points[4].directive, "TODO known deviation tcg-reserved-bit-error-code-without-p");
  const auto summary = junit_summary(junit);
  if (!summary.empty()) {
    EXPECT_EQ(summary, "5 0 0 1");
  }

  const auto m = run_pagelab(
      {"modes", "--backend", "qemu", "--from", "pae", "--no-routes", "--quiet", "--tap"});
  EXPECT_EQ(m.status, 0) << m.err;
  unsigned skips = 0;
  for (const auto& p : parse_tap(m.out)) {
    if (p.directive.rfind("SKIP", 0) == 0) {
      ++skips;
      EXPECT_GT(p.directive.size(), 10u) << "a skip without its reason";
    }
  }
  EXPECT_GT(skips, 0u);  // switching to 32-bit paging in place would unmap the probe
}

}  // namespace
}  // namespace pagelab::test

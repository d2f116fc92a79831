// A scenario run statement by statement (ScenarioReader, AccessSink) is the same run as
// one over the parsed file: same statements, same verdicts, same report lines, and no
// access kept.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"
#include "pagelab/paging/text_file.hpp"

namespace pagelab::lab::scenario {
namespace {

std::vector<std::filesystem::path> examples() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(PAGELAB_SOURCE_DIR "/examples")) {
    if (e.path().extension() == ".pgl") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Collect : AccessSink {
  std::vector<std::string> lines;
  void on_access(const ScenarioResult& so_far, const AccessResult& a) override {
    lines.push_back(format_access(so_far, a, true));
  }
};

// A file in the test's own directory, removed at the end.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& text)
      : path(std::filesystem::temp_directory_path() /
             ("stream-" + std::to_string(::getpid()) + ".pgl")) {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

TEST(ScenarioReader, ReadsTheSameStatementsAsTheParser) {
  for (const auto& path : examples()) {
    const auto whole = load_scenario(path.string());
    ScenarioReader reader(path.string());
    std::size_t n = 0;
    while (auto st = reader.next()) {
      ASSERT_LT(n, whole.statements.size()) << path;
      EXPECT_EQ(st->where.line, whole.statements[n].where.line) << path;
      EXPECT_EQ(st->text, whole.statements[n].text) << path;
      if (const auto* a = std::get_if<AccessStep>(&st->action)) {
        const auto* b = std::get_if<AccessStep>(&whole.statements[n].action);
        ASSERT_NE(b, nullptr) << path << ":" << st->where.line;
        EXPECT_EQ(a->expects.size(), b->expects.size()) << path << ":" << st->where.line;
      }
      ++n;
    }
    EXPECT_EQ(n, whole.statements.size()) << path;
    EXPECT_EQ(reader.header().title, whole.title) << path;
    EXPECT_EQ(reader.header().requires_features, whole.requires_features) << path;
  }
}

TEST(ScenarioReader, AnExpectWaitsForItsAccessAndErrorsNameTheirLine) {
  TempFile f(
      "mode 4level\nmap 0x1000 -> 0x20_0000 4k w\nread 0x1000\n\nexpect ok\n"
      "read 0x1000\nexpect bogus\n");
  ScenarioReader reader(f.path.string());
  ASSERT_TRUE(reader.next());  // mode
  ASSERT_TRUE(reader.next());  // map
  const auto read = reader.next();
  ASSERT_TRUE(read);
  EXPECT_EQ(std::get<AccessStep>(read->action).expects.size(), 1u);  // two lines later
  try {
    reader.next();
    FAIL() << "an unknown expectation was read";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.where().line, 7u);
  }
}

TEST(ScenarioReader, ATooLongLineIsAnErrorAtThatLine) {
  TempFile f("mode 4level\n# " + std::string(paging::MaxTextLineBytes + 10, 'x') + "\n");
  ScenarioReader reader(f.path.string());
  try {
    while (reader.next()) {
    }
    FAIL() << "a line over the limit was read";
  } catch (const ScenarioError& e) {
    EXPECT_EQ(e.where().line, 2u);
  }
}

TEST(ScenarioStream, ASinkGetsEveryAccessInOrderAndNothingIsKept) {
  for (const auto& path : examples()) {
    const auto whole = run_scenario(load_scenario(path.string()), nullptr);
    Collect sink;
    const auto head = scan_scenario(path.string());
    const auto streamed = run_scenario_file(head, nullptr, known_access_deviations(), &sink);
    EXPECT_TRUE(streamed.accesses.empty()) << path;
    ASSERT_EQ(sink.lines.size(), whole.accesses.size()) << path;
    for (std::size_t i = 0; i < sink.lines.size(); ++i) {
      EXPECT_EQ(sink.lines[i], format_access(whole, whole.accesses[i], true)) << path;
    }
    for (auto v : {Verdict::Passed, Verdict::Failed, Verdict::Skipped}) {
      EXPECT_EQ(streamed.count(v), whole.count(v)) << path;
    }
    EXPECT_EQ(streamed.verdict, whole.verdict) << path;
  }
}

TEST(ScenarioStream, AScanKeepsTheSetupAndTheFirstAccessOnly) {
  TempFile f(
      "# title\nmode 4level\nmap 0x1000 -> 0x20_0000 4k w\nread 0x1000\nread 0x1000\n"
      "map 0x80_0000_0000 -> 0 1g 1g w\nread 0x1000\n");
  const auto head = scan_scenario(f.path.string());
  EXPECT_EQ(head.title, "title");
  ASSERT_EQ(head.statements.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<AccessStep>(head.statements.back().action));
  // Found by reading to the end: a 1 GiB page after the first access.
  EXPECT_EQ(head.requires_features, std::vector<std::string>{"1GB-pages"});
}

TEST(TextLineReader, GivesEveryLineWithOrWithoutAFinalNewline) {
  for (const std::string text : {"a\n\nbb\n", "a\n\nbb"}) {
    TempFile f(text);
    paging::TextLineReader lines(f.path.string());
    std::vector<std::string> got;
    std::string_view line;
    while (lines.next(line)) got.emplace_back(line);
    EXPECT_EQ(got, (std::vector<std::string>{"a", "", "bb"}));
  }
}

}  // namespace
}  // namespace pagelab::lab::scenario

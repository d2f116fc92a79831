// The matrix on QEMU TCG: a deterministic slice of every mode agrees with the judge (or
// is a named deviation), and a deliberately wrong judge is caught by name, replayed alone
// and exported as a scenario that fails `pagelab run` with the same wrong judge.
#include <gtest/gtest.h>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/matrix/flag_space.hpp"
#include "pagelab/matrix/matrix_run.hpp"
#include "pagelab/paging/planted_bug.hpp"

namespace pagelab::matrix {
namespace {

class MatrixQemu : public test::QemuTest {
 protected:
  static lab::LabOptions qemu() {
    lab::LabOptions o;
    o.backend = lab::BackendKind::Qemu;
    return o;
  }
};

class PlantedBug {
 public:
  explicit PlantedBug(paging::PlantedBug bug) { paging::set_planted_bug(bug); }
  ~PlantedBug() { paging::set_planted_bug(paging::PlantedBug::None); }
  PlantedBug(const PlantedBug&) = delete;
  PlantedBug& operator=(const PlantedBug&) = delete;
};

TEST_F(MatrixQemu, SampleOfEveryModeHasNoUnexplainedCase) {
  lab::Lab lab(qemu());
  for (const auto& mode : matrix_modes()) {
    RunOptions o;
    // About 400 cases spread over the whole mode (an odd stride crosses every dimension's
    // values, the control bits outermost included).
    o.selection.sample = FlagSpace(mode).count() / 400 | 1;
    const auto r = run_mode(lab, mode, o);
    if (r.skipped) {
      std::cout << "[ INFO     ] " << mode.name << " skipped: " << *r.skipped << "\n";
      continue;
    }
    EXPECT_GT(r.ran, 0u) << mode.name;
    EXPECT_EQ(r.unexplained, 0u) << mode.name << ": "
                                 << (r.reports.empty() ? ""
                                                       : r.reports.front().name + "\n" +
                                                             r.reports.front().report);
    EXPECT_EQ(
        r.agreed + r.skipped_cases + r.unexplained, r.ran -
                                                        [&] {
                                                          std::uint64_t n = 0;
                                                          for (const auto& [id, k] : r.deviations)
                                                            n += k;
                                                          return n;
                                                        }())
        << mode.name;
    EXPECT_GT(r.agreed, 0u) << mode.name;
  }
}

// IgnoreUserBit: the judge lets CPL3 accesses through supervisor pages; the CPU refuses
// them (SDM 4.6), so the matrix must name such cases, and each must fail alone.
TEST_F(MatrixQemu, PlantedBugIsCaughtByNameAndReplaysAlone) {
  std::string name;
  {
    PlantedBug bug(paging::PlantedBug::IgnoreUserBit);
    lab::Lab lab(qemu());
    RunOptions o;
    o.selection.sample = 97;
    o.selection.limit = 1500;
    const auto r = run_mode(lab, select_modes("4level-4k").front(), o);
    ASSERT_GT(r.unexplained, 0u);
    ASSERT_FALSE(r.reports.empty());
    name = r.reports.front().name;
    EXPECT_NE(name.find("cpl3"), std::string::npos) << name;
    EXPECT_NE(r.reports.front().report.find("walk"), std::string::npos) << r.reports.front().report;

    // The same case alone, in-process.
    const FlagSpace space(select_modes("4level-4k").front());
    std::string error;
    RunOptions one;
    one.selection.only = space.parse(name, &error);
    ASSERT_TRUE(one.selection.only) << error;
    const auto alone = run_mode(lab, select_modes("4level-4k").front(), one);
    EXPECT_EQ(alone.ran, 1u);
    EXPECT_EQ(alone.unexplained, 1u);
  }
  // And through the CLI, with the environment switch, exported and replayed by `run`.
  test::TempDir dir;
  const auto file = (dir.path() / "case.pgl").string();
  test::RunSetup bug;
  bug.env = {{"PAGELAB_PLANTED_BUG", "ignore-us"}};
  const auto replay =
      test::run_pagelab({"matrix", "--backend", "qemu", "--case", name, "--export", file}, bug);
  EXPECT_EQ(replay.status, 1) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("FAILED case #"), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find(name), std::string::npos) << replay.out;
  const auto text = test::slurp(file);
  EXPECT_NE(text.find(name), std::string::npos) << text;
  const auto run = test::run_pagelab({"run", "--backend", "qemu", file}, bug);
  EXPECT_EQ(run.status, 1) << text << run.out << run.err;
}

}  // namespace
}  // namespace pagelab::matrix

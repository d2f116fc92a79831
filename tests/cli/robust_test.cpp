// Nothing lost, nothing silent (issue 14): a backend that dies or cannot start, a
// flooding QEMU, hostile input files and a full disk are reported (one line; exit 2 for
// bad input with FILE:LINE:COL), bounded, and never mistaken for a pass.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "process_table.hpp"

namespace pagelab::test {
namespace {

using namespace std::chrono_literals;

int lines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// stderr without auto's note that it fell back to QEMU (said before anything runs, so
// it precedes an error found while running).
std::string without_auto_note(const std::string& err) {
  const std::string note = "pagelab: no /dev/kvm (";
  if (err.rfind(note, 0) != 0) return err;
  const auto end = err.find('\n');
  return end == std::string::npos ? std::string() : err.substr(end + 1);
}

RunSetup with_qemu(const std::string& binary) {
  RunSetup setup;
  setup.env.emplace_back("PAGELAB_QEMU", binary);
  return setup;
}

RunSetup stdout_to(const std::string& path) {
  RunSetup setup;
  setup.stdout_path = path;
  return setup;
}

// ---- 1. QEMU killed mid-run, or failing at start-up

// A long first file (so the kill lands while it runs) and a short second one. Each
// `expect ad` ends a batch, so every read is a round trip to QEMU (~0.1 ms): several
// seconds in all, however fast the batches get.
std::string long_scenario() {
  std::string text = "# many reads\nmap 0x4000_0000 -> 0x20_0000 4k w\n";
  for (int i = 0; i < 100000; ++i) text += "read 0x4000_0000\nexpect ad PT a=1\n";
  return text;
}

class QemuFailure : public QemuTest {};

TEST_F(QemuFailure, KilledMidRunIsReportedFlushedAndTheNextFileGetsAFreshQemu) {
  const TempDir dir;
  const auto first = dir.write("long.pgl", long_scenario());
  RunSetup setup;
  bool killed = false;
  setup.while_running = [&](pid_t pid) {
    const std::string tag = "guest=pagelab-" + std::to_string(pid) + "-";
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < deadline && !killed) {
      for (const auto& p : process_table()) {
        if (p.live() && p.cmdline.find(tag) != std::string::npos) {
          std::this_thread::sleep_for(300ms);  // past start-up (~50 ms), into the reads
          killed = ::kill(p.pid, SIGKILL) == 0;
          break;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  };
  const auto r =
      run_pagelab({"run", "--backend", "qemu", first, example("worked_example.pgl")}, setup);
  ASSERT_TRUE(killed);
  EXPECT_EQ(r.status, 1) << r.out << r.err;  // not 141 (SIGPIPE), not 0
  EXPECT_TRUE(contains(r.out, "QEMU exited (signal 9)")) << r.out;
  // Mid-run it names the line; a kill that lands in start-up fails the file instead.
  EXPECT_TRUE(contains(r.out, " during " + first + ":") ||
              contains(r.out, "qemu-tcg could not start"))
      << r.out;
  // What ran is flushed, and the second file ran on a fresh QEMU.
  EXPECT_TRUE(contains(r.out, "worked_example.pgl (qemu-tcg)")) << r.out;
  EXPECT_TRUE(contains(r.out, "(2 files, on qemu-tcg)")) << r.out;
}

TEST_F(QemuFailure, AQemuThatExitsAtStartUpFailsTheFile) {
  const auto r = run_pagelab({"run", "--backend", "qemu", example("worked_example.pgl")},
                             with_qemu("/bin/false"));
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "qemu-tcg could not start")) << r.out;
  EXPECT_TRUE(contains(r.out, "QEMU exited (status 1)")) << r.out;
}

// ---- 2. A backend that is unavailable is not a pass

TEST(BackendUnavailable, AnExplicitQemuThatIsMissingIsAnError) {
  const auto r = run_pagelab({"run", "--backend", "qemu", example("worked_example.pgl")},
                             with_qemu("/nonexistent/qemu"));
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "backend qemu-tcg unavailable")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(BackendUnavailable, AnExplicitKvmThatIsMissingIsAnError) {
  if (!kvm_missing()) GTEST_SKIP() << "KVM works here";
  const auto r = run_pagelab({"run", "--backend", "kvm", example("worked_example.pgl")});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "backend kvm unavailable")) << r.err;
  EXPECT_TRUE(contains(r.err, "scripts/nested-kvm.sh")) << r.err;
}

TEST(BackendUnavailable, NoBackendUnderAutoOrAllExitsFour) {
  if (!kvm_missing()) GTEST_SKIP() << "KVM works here, so auto has a backend";
  for (const char* backend : {"auto", "all"}) {
    const auto r = run_pagelab({"run", "--backend", backend, example("worked_example.pgl")},
                               with_qemu("/nonexistent/qemu"));
    EXPECT_EQ(r.status, 4) << backend << r.out << r.err;
    EXPECT_TRUE(contains(r.err, "no backend could run here")) << r.err;
    const auto j =
        run_pagelab({"run", "--json", "--backend", backend, example("worked_example.pgl")},
                    with_qemu("/nonexistent/qemu"));
    EXPECT_EQ(j.status, 4);
    EXPECT_TRUE(nlohmann::json::accept(j.out)) << j.out;
  }
}

TEST(BackendUnavailable, OracleOnlyDoesNotSilentlyOverrideBackend) {
  const auto r =
      run_pagelab({"run", "--oracle-only", "--backend", "qemu", example("worked_example.pgl")});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
}

// ---- 4. A QEMU that floods QMP

TEST(QemuFlood, AFloodOfEventsEndsWithAnErrorNotForever) {
  const TempDir dir;
  const auto fake = dir.write("fake-qemu",
                              "#!/bin/sh\n"
                              "echo '{\"QMP\": {\"version\": {}, \"capabilities\": []}}'\n"
                              "while :; do echo '{\"event\": \"FLOOD\", \"data\": {}}'; done\n");
  ::chmod(fake.c_str(), 0755);
  const auto r =
      run_pagelab({"run", "--backend", "qemu", example("worked_example.pgl")}, with_qemu(fake));
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "could not start")) << r.out;
  EXPECT_TRUE(contains(r.out, "no answer from QEMU within") ||
              contains(r.out, "without answering (the limit)"))
      << r.out;
}

TEST(QemuFlood, AnEndlessLineIsRefused) {
  const TempDir dir;
  const auto fake = dir.write("fake-qemu",
                              "#!/bin/sh\n"
                              "exec tr -d '\\n' </dev/zero | tr '\\0' x\n");
  ::chmod(fake.c_str(), 0755);
  const auto r =
      run_pagelab({"run", "--backend", "qemu", example("worked_example.pgl")}, with_qemu(fake));
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "QMP line longer than")) << r.out;
}

// ---- 5, 6. Input errors: exit 2, one line, FILE:LINE:COL

struct BadInput {
  const char* name;
  const char* text;
  const char* where;  // LINE:COL
  const char* message;
};

class RefusedInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(RefusedInput, ExitsTwoWithTheLocation) {
  const TempDir dir;
  const auto file = dir.write("bad.pgl", GetParam().text);
  for (const char* backend : {"--oracle-only", "--verbose"}) {
    const auto r = run_pagelab({"run", backend, file});
    EXPECT_EQ(r.status, 2) << r.out << r.err;
    EXPECT_EQ(lines(without_auto_note(r.err)), 1) << r.err;
    EXPECT_TRUE(contains(r.err, file + ":" + GetParam().where + ": " + GetParam().message))
        << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, RefusedInput,
    ::testing::Values(
        BadInput{"Address64In32Bit", "mode 32bit\nmap 0x4000_0000 4k w\nread 0x100000000\n", "3:6",
                 "address: 0x100000000 does not fit in 32 bits"},
        BadInput{"InvlpgPast4GInPae", "mode pae\nmap 0x4000_0000 4k w\ninvlpg 0x100000000\n", "3:8",
                 "an address: 0x100000000 does not fit in 32 bits"},
        BadInput{"PhysicalRangeWraps", "map 0x40000000 -> 0xffffffffc0000000 2g 1g w\n", "1:19",
                 "map: the physical range: 0xffffffffc0000000 + 0x80000000 bytes goes past 2^64"},
        BadInput{"LengthOverflows", "map 0x40000000 17179869185g 1g w\n", "1:16",
                 "a length: '17179869185g' does not fit in 64 bits"},
        BadInput{"ErrorCodeTooWide",
                 "map 0x4000_0000 4k w\nread 0x5000_0000\nexpect pf err=0x100000000\n", "3:11",
                 "err: a #PF error code has 32 bits"},
        BadInput{"WalkLeavesGuestRam",
                 "map 0x4000_0000 4k w\nset entry 0x4000_0000 PD = 0x2000007\nread 0x4000_0000\n",
                 "3:1", "physical address 0x2000000"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- 7. Files that are not scenario files

TEST(RefusedFile, NonRegularFilesAreRefusedAtOnce) {
  for (const char* path : {"/dev/zero", "/proc/self/mem", "/tmp"}) {
    const auto r = run_pagelab({"run", "--oracle-only", path});
    EXPECT_EQ(r.status, 2) << path << r.out;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_TRUE(contains(r.err, path)) << r.err;
  }
  const auto t = run_pagelab({"explain", "0x1000", "--tables", "/dev/zero"});
  EXPECT_EQ(t.status, 2);
  EXPECT_TRUE(contains(t.err, "not a regular file")) << t.err;
}

TEST(RefusedFile, LongLinesAndMissingFilesSayWhy) {
  const TempDir dir;
  const auto file = dir.write("long.pgl", "map " + std::string(5000, 'x') + "\n");
  const auto r = run_pagelab({"run", "--oracle-only", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, file + ":1:1: the line has 5004 bytes, more than the limit of 4096"))
      << r.err;
  EXPECT_LT(r.err.size(), 400u);
  const auto m = run_pagelab({"run", "--oracle-only", "/nonexistent/none.pgl"});
  EXPECT_TRUE(contains(m.err, "No such file or directory")) << m.err;
}

// ---- 8. Bytes that are not UTF-8, control characters

TEST(HostileText, JsonSurvivesBytesThatAreNotUtf8) {
  const TempDir dir;
  const auto file =
      dir.write("t\xff.pgl", "# title \xff\xfe\nmap 0x4000_0000 4k w\nread 0x4000_0000\n");
  const auto r = run_pagelab({"run", "--oracle-only", "--json", file});
  EXPECT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["counts"]["passed"], 1);
}

TEST(HostileText, EchoedInputIsEscapedAndBounded) {
  const TempDir dir;
  const auto file =
      dir.write("esc.pgl", "map 0x4000_0000 4k w\nread 0x4000_0000 \x1b[31m\x01red\n");
  const auto r = run_pagelab({"run", "--oracle-only", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_TRUE(contains(r.err, "'\\x1b[31m\\x01red'")) << r.err;
  const auto nl = dir.write("new\nline.pgl", "bogus\n");
  const auto n = run_pagelab({"run", "--oracle-only", nl});
  EXPECT_EQ(n.status, 2);
  EXPECT_EQ(lines(n.err), 1) << n.err;
  EXPECT_TRUE(contains(n.err, "new\\x0aline.pgl:1:1")) << n.err;
}

// ---- 9. Rough edges

TEST(RoughEdges, TablesErrorsNameFileLineAndColumn) {
  const TempDir dir;
  const auto file = dir.write("t", "cr3 0x1000\n0x1008 zz\n");
  const auto r = run_pagelab({"explain", "0x1000", "--tables", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, file + ":2:8: 'zz' is not a number")) << r.err;
  const auto none = dir.write("none", "mode none\ncr3 0\n");
  const auto n = run_pagelab({"explain", "0x1000", "--tables", none});
  EXPECT_EQ(n.status, 2) << n.out;
  EXPECT_FALSE(contains(n.out, "4294967295"));
  EXPECT_TRUE(contains(n.err, none + ":1:6: unknown mode 'none'")) << n.err;
}

TEST(RoughEdges, EmptyTablesNameAndWrappingRoundsAreRefused) {
  const auto t = run_pagelab({"explain", "0x1000", "--tables", ""});
  EXPECT_EQ(t.status, 2) << t.out;
  EXPECT_TRUE(contains(t.err, "--tables: empty file name")) << t.err;
  const auto b = run_pagelab({"bench", "--rounds", "4294967297"});
  EXPECT_EQ(b.status, 2) << b.out;
  EXPECT_TRUE(contains(b.err, "--rounds must be 1 to 1000000")) << b.err;
}

class ModesFilter : public QemuTest {};

TEST_F(ModesFilter, AStepFilterThatMatchesNothingIsAnError) {
  const auto r = run_pagelab(
      {"modes", "--backend", "qemu", "--no-routes", "--step", "NO-SUCH-STEP", "--quiet"});
  EXPECT_EQ(r.status, 2) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "no case matches --step NO-SUCH-STEP")) << r.err;
}

// ---- 10. Write errors

TEST(WriteErrors, AFullDiskIsNotASuccess) {
  const auto r =
      run_pagelab({"run", "--oracle-only", example("worked_example.pgl")}, stdout_to("/dev/full"));
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "error writing the output: No space left on device")) << r.err;
}

// ---- 11. JSON on error paths

TEST(JsonOnErrors, WhatRanIsKeptAndTheErrorIsAnObject) {
  const TempDir dir;
  const auto bad = dir.write(
      "ram.pgl", "map 0x4000_0000 4k w\nset entry 0x4000_0000 PD = 0x2000007\nread 0x4000_0000\n");
  const auto r =
      run_pagelab({"run", "--oracle-only", "--json", example("worked_example.pgl"), bad});
  EXPECT_EQ(r.status, 2) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["scenarios"].size(), 2u);  // the file that ran, and the one that could not
  EXPECT_EQ(j["scenarios"][0]["verdict"], "passed");
  EXPECT_EQ(j["scenarios"][1]["verdict"], "failed");
  EXPECT_EQ(j["scenarios"][1]["error"]["line"], 3);
  EXPECT_EQ(j["error"]["file"], bad);
  EXPECT_EQ(j["error"]["line"], 3);
  EXPECT_EQ(j["error"]["exit_status"], 2);
  EXPECT_TRUE(contains(j["error"]["message"].get<std::string>(), "0x2000000"));
}

}  // namespace
}  // namespace pagelab::test

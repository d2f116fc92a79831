// The rough edges of issue 13 item 9: bad bench input before any machine starts, bench
// costs never negative and measured after a warm-up (min and median), `info --no-probe`
// says why there are no quirks, `crash insn` exits 3 when the instruction faults and
// takes "0f0b", and a hang after HLT says the instruction shown is the next one.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"

namespace pagelab::test {
namespace {

TEST(RoughEdgesCli, BenchBatchTooLargeIsBadInputBeforeAnythingStarts) {
  // 4095 operations fit the probe's batch mailbox; 5000 do not.
  const auto r = run_pagelab({"bench", "--batch", "5000", "--backend", "qemu"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "--batch must be 1 to 4095")) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(RoughEdgesCli, CrashBytesParseWithAndWithoutSpaces) {
  EXPECT_EQ(run_pagelab({"crash", "insn", "--bytes", "0f0"}).status, 2);   // half a byte
  EXPECT_EQ(run_pagelab({"crash", "insn", "--bytes", "0fzz"}).status, 2);  // not hex
  EXPECT_EQ(run_pagelab({"crash", "insn", "--bytes", ""}).status, 2);
}

class RoughEdgesQemu : public QemuTest {};

TEST_F(RoughEdgesQemu, BenchCostsAreNeverNegative) {
  const auto r =
      run_pagelab({"bench", "--backend", "qemu", "--batch", "100", "--rounds", "3", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GE(j["exception_cost_us"]["cpl3"].get<double>(), 0.0);
  EXPECT_GE(j["exception_cost_us"]["cpl0"].get<double>(), 0.0);
  EXPECT_GE(j["cpl_round_trip_us"].get<double>(), 0.0);
  for (const auto& w : j["workloads"]) {
    EXPECT_EQ(w["rounds"], 3) << w.dump();
    EXPECT_LE(w["unchecked_us_per_access"].get<double>(),
              w["unchecked_us_per_access_median"].get<double>())
        << w.dump();  // the minimum of the rounds is at most their median
  }
  const auto t = run_pagelab({"bench", "--backend", "qemu", "--batch", "100", "--rounds", "1"});
  EXPECT_TRUE(contains(t.out, "after a warm-up run of every workload")) << t.out;
  EXPECT_FALSE(std::regex_search(t.out, std::regex(" -[0-9]"))) << t.out;  // no negative number
}

TEST_F(RoughEdgesQemu, InfoWithoutProbeSaysSo) {
  const auto r = run_pagelab({"info", "--backend", "qemu", "--no-probe"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "quirks           not probed (--no-probe)")) << r.out;
  EXPECT_FALSE(contains(r.out, "could not run: \n")) << r.out;
}

TEST_F(RoughEdgesQemu, CrashInsnThatFaultsExitsThree) {
  // UD2 (0F 0B) raises #UD (SDM vol. 2 UD): the help promises exit 3.
  const auto r = run_pagelab({"crash", "insn", "--backend", "qemu", "--bytes", "0f 0b"});
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "#UD")) << r.out;
  // NOP then RET: it runs, exit 0.
  EXPECT_EQ(run_pagelab({"crash", "insn", "--backend", "qemu", "--bytes", "90"}).status, 0);
}

TEST_F(RoughEdgesQemu, AHangAfterHltSaysTheInstructionShownIsTheNextOne) {
  // HLT with interrupts off never resumes: a hang, RIP after the HLT.
  const auto r =
      run_pagelab({"crash", "insn", "--backend", "qemu", "--bytes", "f4", "--watchdog-ms", "300"});
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "the byte before RIP is F4 (HLT)")) << r.out;
  EXPECT_TRUE(contains(r.out, "the instruction shown is the next one, not yet run")) << r.out;
  // The probe's own hang is a jump to itself, not HLT: no such note.
  const auto h = run_pagelab({"crash", "hang", "--backend", "qemu", "--watchdog-ms", "300"});
  EXPECT_EQ(h.status, 3);
  EXPECT_FALSE(contains(h.out, "HLT")) << h.out;
}

}  // namespace
}  // namespace pagelab::test

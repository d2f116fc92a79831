// Findings the fuzzer reported that were the judge's mistakes, not the platform's, each
// shrunk by `pagelab fuzz` and kept here as the reproducer it wrote: on QEMU every
// access passes, or is a named deviation. Each comment says which rule the judge had
// wrong; the judge's unit tests (tests/lab/judge_test.cpp) state the rule itself.
#include <gtest/gtest.h>

#include <string>

#include "needs_backend.hpp"
#include "pagelab/lab/scenario/engine_machine.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::fuzz {
namespace {

namespace sc = lab::scenario;

class JudgeFindings : public test::QemuTest {
 protected:
  // Runs `text` on QEMU: no access fails; returns the deviations named, in order.
  static std::vector<std::string> run(const std::string& text) {
    const auto scenario = sc::parse_scenario(text, "finding.pgl");
    lab::LabOptions options;
    options.backend = lab::BackendKind::Qemu;
    auto machine = sc::make_engine_machine(options, false);
    const auto result = sc::run_scenario(scenario, machine.get());
    std::vector<std::string> deviations;
    EXPECT_FALSE(result.accesses.empty()) << text;
    for (const auto& a : result.accesses) {
      EXPECT_NE(a.verdict, sc::Verdict::Failed) << text << a.text << "\n"
                                                << a.reason << "\n"
                                                << a.backend_report;
      if (!a.deviation.empty()) deviations.push_back(a.deviation);
    }
    return deviations;
  }
};

TEST_F(JudgeFindings, AReadThroughAnAliasOfTheProbesMailboxChecksNoValue) {
  // A PDPTE value (a 1 GiB leaf at frame 0) read as a 2 MiB PDE through a self-map: the
  // 8-byte read at 0xffc ends in the probe's mailbox, which the probe writes as it runs.
  EXPECT_TRUE(run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x580005
set entry 0x8100800000 3 = 0x85
set entry 0x8000800000 4 = 0x580005
read 0x8000800ffc user
expect ok
)")
                  .empty());
}

TEST_F(JudgeFindings, AnEntryAFaultingWalkUsedMayHaveItsAccessedBitSet) {
  // The write faults at the PDE; its walk may set A in the PDPTE it used (SDM §4.8),
  // which the read's second page then reads as data.
  EXPECT_TRUE(run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x581007
set entry 0x8000800000 2 = 0x582007
set entry 0x8000800000 1 = 0xc01001
set entry 0x8000801000 1 = 0x580001
set entry 0x8000800000 2 = 0x582001
set entry 0x8000800000 3 = 0x581001
set entry 0x8100800000 3 = 0x581001
set entry 0x8000800000 4 = 0x580001
write 0x8000a01100 value 0x0
read 0x8100800ffc
expect ok
)")
                  .empty());
}

TEST_F(JudgeFindings, AnEntryUsedAsAnUpperEntryByAFaultingWalkAndThenAsALeaf) {
  // The read's walk uses the entry at 0x582020 as a PDE and may set its A; the write
  // then uses it as a PTE and faults: A set is the first walk's, not the write's.
  EXPECT_TRUE(run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x581007
set entry 0x8000800000 2 = 0x582007
set entry 0x8000804000 1 = 0x900001
set entry 0x8000800000 2 = 0x0
set entry 0x8000a00000 2 = 0x582001
set entry 0x8000800000 3 = 0x581001
set entry 0x8100800000 3 = 0x582001
set entry 0x8000800000 4 = 0x580001
read 0x8100801ffc
write 0x8000a04100 value 0x0
expect pf err=0x3 cr2=0x8000a04100
)")
                  .empty());
}

TEST_F(JudgeFindings, AFaultInsideA1GPageKeepsItsOtherSmallPages) {
  // The write's #PF at 0x8000800100 invalidates that page number only; the 1 GiB
  // translation the first read cached may survive as 4 KiB entries for its other pages
  // (SDM §4.10.2.3, §4.10.4.1), and the last read may use it.
  EXPECT_TRUE(run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x581007
set entry 0x8000800000 2 = 0x582007
set entry 0x8000804000 1 = 0xa00001
set entry 0x8000800000 2 = 0x0
set entry 0x8000a00000 2 = 0x582021
set entry 0x8000800000 3 = 0x81
set entry 0x8000800000 4 = 0x580001
read 0x8000a04ffc
set entry 0x8000800000 3 = 0x581001
write 0x8000800100 value 0x0
read 0x8000a04ff8
expect ok
)")
                  .empty());
}

TEST_F(JudgeFindings, AKeptTranslationSetsNoAccessedBitOnTcg) {
  // tcg-pf-keeps-tlb-entry: after the write's #PF, TCG answers the second read of the
  // page from the translation it kept and sets no A in the PTE, which the last read's
  // second page reads as data.
  EXPECT_TRUE(run(R"(mode 32bit
set entry 0x40000000 2 = 0x580007
set entry 0x40000000 1 = 0xa00001
set entry 0x40001000 1 = 0x580001
set entry 0x40000000 2 = 0x0
set entry 0x40000000 2 = 0x580001
read 0x40000100
set entry 0x40000000 1 = 0xa00001
write 0x400003f8 value 0x0
read 0x40000100
read 0x40000ffc
expect ok
)")
                  .empty());
}

TEST_F(JudgeFindings, AKeptTranslationMayTakeAWriteOnTcg) {
  // tcg-pf-keeps-tlb-entry: the second write goes through the translation TCG kept
  // across the user read's #PF, so the last read need not see its data.
  EXPECT_TRUE(run(R"(mode 5level
set entry 0x1000000800000 5 = 0x580007
set entry 0x1000000800000 4 = 0x581007
set entry 0x1000000800000 3 = 0x582007
set entry 0x1000000800000 2 = 0x583007
set entry 0x1000000800000 1 = 0xa00003
set entry 0x1000000800000 2 = 0x583003
set entry 0x1000000800000 3 = 0x582003
set entry 0x1000100800000 3 = 0x580003
set entry 0x1000000800000 4 = 0x581003
set entry 0x1020000800000 4 = 0x581003
set entry 0x1000000800000 5 = 0x580003
write 0x1000100800108 value 0x0
read 0x1000100800ffc user
set entry 0x1000100800000 3 = 0x582023
write 0x1000100800108 value 0x1b6b9f14b6dd53e8
read 0x1000000800108
expect ok
)")
                  .empty());
}

TEST_F(JudgeFindings, APageCrossingReadThroughThePdptesInMemoryMayBeCached) {
  // QEMU TCG reports an AMD CPU, whose PAE walks may read the PDPTEs in memory rather
  // than the registers (the judge's pdpt_walked): the first read that crosses a page
  // translates both pages that way, may cache them, and the second may use them after
  // the PDPTE in memory is cleared again.
  EXPECT_TRUE(run(R"(mode pae
set entry 0x40800000 3 = 0x580001
set entry 0x40800000 2 = 0x581007
set entry 0x40800000 1 = 0x900001
set entry 0x40801000 1 = 0x902001
set entry 0x40800000 2 = 0x581001
set entry 0x40800000 3 = 0x0
read 0x40800108
set entry 0x40800000 3 = 0x580001
read 0x40800ffc
set entry 0x40800000 3 = 0x580000
read 0x40800ffc
)")
                  .empty());
}

TEST_F(JudgeFindings, AFetchFromOutsideGuestRamIsSkippedNotAStoppedGuest) {
  // A PDPTE read as a 2 MiB PDE names a frame at 256 MiB, beyond the 16 MiB of RAM:
  // nothing can be planted there, so the engine skips the fetch with the reason (it used
  // to throw, and the fuzzer reported a stopped guest).
  EXPECT_TRUE(run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x580001
set entry 0x8100800000 3 = 0x10001081
set entry 0x8000800000 4 = 0x580001
fetch 0x8000800800
)")
                  .empty());
}

TEST_F(JudgeFindings, TheAccessedBitA1GLeafGetsOnAFaultMayBeReadAsData) {
  // tcg-1g-leaf-accessed-on-fault: the user fetch faults on the supervisor 1 GiB leaf,
  // and TCG sets its A bit; the read's second page reads that entry as data.
  const auto named = run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x581007
set entry 0x8000800000 2 = 0x582007
set entry 0x8000800000 1 = 0x901001
set entry 0x8000801000 1 = 0x580001
set entry 0x8000800000 2 = 0x582001
set entry 0x8000800000 3 = 0x81
set entry 0x8100800000 3 = 0x581001
set entry 0x8000800000 4 = 0x580001
fetch 0x8000a00840 user
read 0x8100800ffc
)");
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named.front(), "tcg-1g-leaf-accessed-on-fault");
}

TEST_F(JudgeFindings, TheAccessedBitA1GLeafGetsOnAFaultIsANamedDeviation) {
  // tcg-1g-leaf-accessed-on-fault, once only the matrix's: the engine's A/D read-back
  // names it too, also when the entry is used as a 4 KiB leaf afterwards.
  const auto first = run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8100800000 3 = 0x81
set entry 0x8000800000 4 = 0x580001
read 0x81008017f8 user
expect pf err=0x5 cr2=0x81008017f8
)");
  const auto second = run(R"(mode 4level
set entry 0x8000800000 4 = 0x580007
set entry 0x8000800000 3 = 0x581007
set entry 0x8000800000 2 = 0x580001
set entry 0x8000800000 3 = 0x81
set entry 0x8100800000 3 = 0x581001
set entry 0x8000800000 4 = 0x580001
write 0x8000804108 value 0x0
write 0x8100800100 user value 0x0
expect pf err=0x7 cr2=0x8100800100
)");
  for (const auto& named : {first, second}) {
    ASSERT_EQ(named.size(), 1u);
    EXPECT_EQ(named.front(), "tcg-1g-leaf-accessed-on-fault");
  }
}

}  // namespace
}  // namespace pagelab::fuzz

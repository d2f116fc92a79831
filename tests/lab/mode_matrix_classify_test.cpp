// Classification of mode-transition cases on synthetic observations (no CPU): the
// model's verdicts come from the SDM rules, the observations are made up to exercise
// agreed / listed deviation / unexplained mismatch / skipped.
#include <gtest/gtest.h>

#include "pagelab/lab/modes/deviations.hpp"
#include "pagelab/lab/modes/mode_matrix_case.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::lab {
namespace {

using paging::ControlState;
using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::Write;

// Protected mode, paging off, running 32-bit code: CR0.PE|ET.
ControlState protected_state() {
  ControlState s;
  s.cr0 = Cr0::Pe | Cr0::Et;
  s.cs_d = true;
  return s;
}

paging::TransitionFeatures pvm_like_features() {
  paging::TransitionFeatures f;
  f.smep = f.smap = f.pku = f.la57 = f.pcid = false;
  return f;
}

// Cases are made as if kvm_pvm ran them: the PVM deviations are listed for it.
MatrixCase make_case(const ControlState& before, Write what, std::uint64_t value,
                     const paging::TransitionFeatures& f = pvm_like_features()) {
  MatrixCase c;
  c.platform = "kvm_pvm";
  c.before = before;
  c.from = paging::mode_of(before);
  c.step = {what, value, "test step"};
  c.expected = paging::evaluate(before, what, value, f);
  return c;
}

Observation gp0(const ControlState& after) {
  Observation o;
  o.executed = true;
  o.faulted = true;
  o.vector = 13;
  o.error_code = 0;
  o.after = after;
  return o;
}

Observation ok(const ControlState& after) {
  Observation o;
  o.executed = true;
  o.after = after;
  return o;
}

// QEMU's deviation `id` explains the case; the same observation on PVM is a mismatch.
void expect_listed_only_on_qemu(MatrixCase c, const std::string& id) {
  c.platform = "qemu-tcg";
  classify(c, known_deviations());
  EXPECT_EQ(c.deviation_id, id) << c.detail;
  c.platform = "kvm_pvm";
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch) << c.detail;
}

// The case's control-register write ran and nothing else changed.
Observation took_effect(const MatrixCase& c) {
  auto after = c.before;
  switch (c.step.what) {
    case Write::Cr0:
      after.cr0 = c.step.value;
      break;
    case Write::Cr4:
      after.cr4 = c.step.value;
      break;
    default:
      ADD_FAILURE() << "took_effect() is for CR0 and CR4 writes";
  }
  return ok(after);
}

TEST(ModeMatrixClassify, RefusedWriteThatFaultsAndKeepsStateAgrees) {
  // SDM 4.1.2: PG with LME=1 and PAE=0 raises #GP(0).
  auto before = protected_state();
  before.efer = Efer::Lme;
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  ASSERT_FALSE(c.expected.allowed);
  EXPECT_NE(c.expected.rule.find("4.1.2"), std::string::npos) << c.expected.rule;
  c.observed = gp0(before);
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Agreed) << c.detail;
}

TEST(ModeMatrixClassify, RefusedWriteThatChangesStateIsAMismatch) {
  auto before = protected_state();
  before.efer = Efer::Lme;
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  auto after = before;
  after.cr0 |= Cr0::Pg;
  c.observed = gp0(after);  // faulted, yet PG stuck: the SDM says the state is unchanged
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
  EXPECT_NE(c.detail.find("CR0 after"), std::string::npos) << c.detail;
}

TEST(ModeMatrixClassify, WrongErrorCodeIsAMismatch) {
  auto before = protected_state();
  before.efer = Efer::Lme;
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  c.observed = gp0(before);
  c.observed.error_code = 8;
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
}

TEST(ModeMatrixClassify, LegacyPagingRefusalIsTheListedDeviation) {
  // SDM 4.1.2: PG with PAE=0, LME=0 enables 32-bit paging; a platform raising #GP(0)
  // instead is the known PVM deviation.
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  ASSERT_TRUE(c.expected.allowed);
  EXPECT_EQ(c.expected.mode_after, paging::Mode::Paging32);
  c.observed = gp0(before);
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Deviation) << c.detail;
  EXPECT_EQ(c.deviation_id, "pvm-legacy-paging-refused");
}

TEST(ModeMatrixClassify, PaePagingRefusalIsTheSameDeviation) {
  auto before = protected_state();
  before.cr4 = Cr4::Pae;
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  ASSERT_TRUE(c.expected.allowed);
  EXPECT_EQ(c.expected.mode_after, paging::Mode::Pae);
  c.observed = gp0(before);
  classify(c, known_deviations());
  EXPECT_EQ(c.deviation_id, "pvm-legacy-paging-refused");
}

TEST(ModeMatrixClassify, UnlistedDeviationIsAMismatch) {
  // The same observation with no deviation list: nothing explains it.
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  c.observed = gp0(before);
  classify(c, {});
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
  EXPECT_TRUE(c.deviation_id.empty());
}

TEST(ModeMatrixClassify, AllowedWriteRefusedWithoutAListedReasonIsAMismatch) {
  // Setting EFER.LME with paging off is legal (SDM 9.8.5); #GP here matches no entry.
  const auto before = protected_state();
  auto c = make_case(before, Write::Efer, before.efer | Efer::Lme);
  ASSERT_TRUE(c.expected.allowed);
  c.observed = gp0(before);
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch) << c.detail;
}

TEST(ModeMatrixClassify, AllowedWriteLandingInAnotherModeIsAMismatch) {
  // PG with LME=1 and PAE=1 must activate IA-32e mode (EFER.LMA=1, SDM 9.8.5).
  auto before = protected_state();
  before.cr4 = Cr4::Pae;
  before.efer = Efer::Lme;
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  ASSERT_TRUE(c.expected.allowed);
  EXPECT_EQ(c.expected.mode_after, paging::Mode::Compatibility4);
  auto after = before;
  after.cr0 |= Cr0::Pg;  // but LMA not set: PAE paging, not IA-32e
  c.observed = ok(after);
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
  EXPECT_NE(c.detail.find("EFER after"), std::string::npos) << c.detail;
  after.efer |= Efer::Lma;
  c.observed = ok(after);
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Agreed) << c.detail;
}

TEST(ModeMatrixClassify, PkeAcceptedWithoutPkuIsTheListedDeviation) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | Cr4::Pke);
  ASSERT_FALSE(c.expected.allowed);  // SDM 2.5: reserved without CPUID PKU
  auto after = before;
  after.cr4 |= Cr4::Pke;
  c.observed = ok(after);
  classify(c, known_deviations());
  EXPECT_EQ(c.deviation_id, "pvm-cr4-pke-without-pku") << c.detail;
}

TEST(ModeMatrixClassify, PkeWithPkuIsAllowedAndAgrees) {
  auto f = pvm_like_features();
  f.pku = true;
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | Cr4::Pke, f);
  ASSERT_TRUE(c.expected.allowed);
  c.observed = took_effect(c);
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Agreed) << c.detail;
}

TEST(ModeMatrixClassify, SmepAcceptedWithoutCpuidIsListed) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | Cr4::Smep);
  c.observed = took_effect(c);
  classify(c, known_deviations());
  EXPECT_EQ(c.deviation_id, "kvm-cr4-smep-smap-without-cpuid");
}

TEST(ModeMatrixClassify, UpperCr0BitIgnoredIn64BitModeIsListedOnlyWhenDropped) {
  ControlState before;
  before.cr0 = Cr0::Pe | Cr0::Et | Cr0::Pg;
  before.cr4 = Cr4::Pae;
  before.efer = Efer::Lme | Efer::Lma;
  before.cs_l = true;
  before.cs_d = false;
  ASSERT_EQ(paging::mode_of(before), paging::Mode::Long64_4Level);
  auto c = make_case(before, Write::Cr0, before.cr0 | paging::bit(32));
  ASSERT_FALSE(c.expected.allowed);  // SDM 2.5: bits 63:32 reserved, #GP(0)
  c.observed = ok(before);
  classify(c, known_deviations());
  EXPECT_EQ(c.deviation_id, "pvm-upper-control-bits-ignored");
  auto stored = before;
  stored.cr0 |= paging::bit(32);
  c.observed = ok(stored);  // kept the reserved bit: not what the entry describes
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
}

TEST(ModeMatrixClassify, GuestStopIsAMismatch) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | Cr4::Pge);
  c.observed.executed = true;
  c.observed.after = before;
  c.observed.stopped = "triple fault";
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
  EXPECT_NE(c.detail.find("stopped"), std::string::npos);
}

TEST(ModeMatrixClassify, SegmentCrossCheckFailureIsAMismatch) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | Cr4::Pge);
  c.observed = took_effect(c);
  c.observed.segment_problem = "CS 0x8: descriptor says D/B=1, vCPU has D/B=0";
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch);
}

TEST(ModeMatrixClassify, SkipReasonWinsAndIsTheDetail) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr0, before.cr0 & ~Cr0::Pe);
  c.skip_reason = "would take the probe's own code away";
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Skipped);
  EXPECT_EQ(c.detail, *c.skip_reason);
}

TEST(ModeMatrixClassify, JsonCarriesBackendRuleAndVerdict) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  c.observed = gp0(before);
  classify(c, known_deviations());
  const auto j = c.to_json();
  EXPECT_EQ(j["backend"], "kvm");
  EXPECT_EQ(j["from"], "protected");
  EXPECT_EQ(j["verdict"], "known-deviation");
  EXPECT_EQ(j["id"], "protected:" + c.step.label);
  EXPECT_EQ(j["deviation"], "pvm-legacy-paging-refused");
  EXPECT_NE(j["rule"].get<std::string>().find("SDM 4.1.2"), std::string::npos);
  EXPECT_EQ(j["observed"]["vector"], 13);
}

TEST(ModeMatrixClassify, APvmDeviationDoesNotExplainTheSameSymptomOnQemu) {
  // SDM 4.1.2: 32-bit paging is allowed; a #GP here is listed for kvm_pvm only.
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Pg);
  c.observed = gp0(before);
  c.platform = "qemu-tcg";
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch) << c.detail;
  c.platform.clear();  // unknown platform: nothing platform-specific applies
  classify(c, known_deviations());
  EXPECT_EQ(c.verdict, CaseVerdict::Mismatch) << c.detail;
}

TEST(ModeMatrixClassify, AQemuDeviationDoesNotExplainTheSameSymptomOnKvm) {
  // SDM MOV CR0: NW=1 with CD=0 raises #GP(0); QEMU 7.2 TCG takes it (listed for it).
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr0, before.cr0 | Cr0::Nw);
  ASSERT_FALSE(c.expected.allowed);
  c.observed = took_effect(c);
  expect_listed_only_on_qemu(c, "qemu-cr0-nw-without-cd-accepted");
}

TEST(ModeMatrixClassify, AKvmFamilyDeviationAppliesToEveryFlavourOnly) {
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | Cr4::Smep);
  c.observed = took_effect(c);
  for (const auto* platform : {"kvm_intel", "kvm_amd", "kvm_pvm"}) {
    c.platform = platform;
    classify(c, known_deviations());
    EXPECT_EQ(c.deviation_id, "kvm-cr4-smep-smap-without-cpuid") << platform;
  }
  for (const auto* platform : {"qemu-tcg", "kvmx"}) {
    c.platform = platform;
    classify(c, known_deviations());
    EXPECT_EQ(c.verdict, CaseVerdict::Mismatch) << platform;
  }
}

TEST(ModeMatrixClassify, QemuVmexitLoopOnAReservedCr4BitIsListedForQemuOnly) {
  // SDM 2.5: a reserved CR4 bit raises #GP(0). QEMU 7.2 TCG loops on the MOV instead.
  const auto before = protected_state();
  auto c = make_case(before, Write::Cr4, before.cr4 | paging::bit(15));
  ASSERT_FALSE(c.expected.allowed);
  c.observed.executed = true;
  c.observed.after = before;
  c.observed.stopped = "hang: abnormal stop: hang";
  c.platform = "qemu-tcg";
  classify(c, known_deviations());
  EXPECT_EQ(c.deviation_id, "qemu-reserved-control-bit-vmexit-loop") << c.detail;
  // A hang on a write the SDM allows is not that deviation.
  auto allowed = make_case(before, Write::Cr4, before.cr4 | Cr4::Pge);
  allowed.observed = c.observed;
  allowed.platform = "qemu-tcg";
  classify(allowed, known_deviations());
  EXPECT_EQ(allowed.verdict, CaseVerdict::Mismatch);
}

// IA-32e 64-bit mode, 4-level paging, as the probe runs it.
ControlState long64_state() {
  ControlState s;
  s.cr0 = Cr0::Pe | Cr0::Et | Cr0::Pg;
  s.cr4 = Cr4::Pae;
  s.efer = Efer::Lme | Efer::Lma;
  s.cs_l = true;
  s.cs_d = false;
  return s;
}

TEST(ModeMatrixClassify, FarJumpToL1D1InIa32eTakenByQemuIsListedForQemuOnly) {
  // SDM JMP / 3.4.5: L=1 with D=1 in IA-32e mode raises #GP(selector).
  const auto before = long64_state();
  auto c = make_case(before, Write::FarJumpCs, paging::FarJumpOperand::make(true, true, 0x68));
  ASSERT_FALSE(c.expected.allowed);
  EXPECT_EQ(c.expected.error_code, 0x68u);
  auto after = before;
  after.cs_d = true;
  c.observed = ok(after);
  expect_listed_only_on_qemu(c, "qemu-far-jump-l1-d1-in-ia32e-accepted");
  // The same jump outside IA-32e mode is allowed (L is ignored, D=1: 32-bit code) and
  // lands with the descriptor's L and D in CS.
  auto legacy = make_case(protected_state(), Write::FarJumpCs,
                          paging::FarJumpOperand::make(true, true, 0x68));
  ASSERT_TRUE(legacy.expected.allowed);
  EXPECT_EQ(legacy.expected.mode_after, paging::Mode::Protected);
  auto landed = protected_state();
  landed.cs_l = true;
  legacy.observed = ok(landed);
  classify(legacy, known_deviations());
  EXPECT_EQ(legacy.verdict, CaseVerdict::Agreed) << legacy.detail;
}

TEST(ModeMatrixClassify, RealModeFarJumpKeepsLAndDAndAQemuShutdownOnPgIsListed) {
  // SDM JMP: a real-mode far jump reads no descriptor: L and D stay as they were.
  ControlState real;
  real.cr0 = Cr0::Et;
  real.cs_d = false;
  auto jump = make_case(real, Write::FarJumpCs, paging::FarJumpOperand::make(true, true, 0x68));
  ASSERT_TRUE(jump.expected.allowed);
  EXPECT_EQ(jump.expected.after, real);
  jump.observed = ok(real);
  classify(jump, known_deviations());
  EXPECT_EQ(jump.verdict, CaseVerdict::Agreed) << jump.detail;
  // SDM MOV CR0: PG with PE=0 raises #GP(0); QEMU 7.2 TCG takes it and triple-faults.
  auto pg = make_case(real, Write::Cr0, real.cr0 | Cr0::Pg);
  ASSERT_FALSE(pg.expected.allowed);
  pg.observed.executed = true;
  pg.observed.after = real;
  pg.observed.stopped = "triple fault (SHUTDOWN): abnormal stop";
  expect_listed_only_on_qemu(pg, "qemu-cr0-pg-in-real-mode-triple-fault");
}

TEST(ModeMatrixClassify, EveryDeviationNamesItsPlatformInItsId) {
  for (const auto& d : known_deviations()) {
    ASSERT_FALSE(d.platform.empty()) << d.id;
    const auto prefix = d.platform == "kvm_pvm"         ? "pvm-"
                        : d.platform == "qemu-tcg"      ? "qemu-"
                        : d.platform == "tcg-under-kvm" ? "tcg-under-kvm-"
                                                        : "kvm-";
    EXPECT_EQ(d.id.rfind(prefix, 0), 0u) << d.id << " on " << d.platform;
    if (d.platform == "qemu-tcg") {
      EXPECT_NE(d.reproducer.find("--backend qemu"), std::string::npos) << d.id;
    } else {
      EXPECT_NE(d.reproducer.find("--backend kvm"), std::string::npos) << d.id;
    }
  }
}

TEST(ModeMatrixClassify, ShortNamesRoundTrip) {
  for (const auto m : {paging::Mode::Real, paging::Mode::Protected, paging::Mode::Paging32,
                       paging::Mode::Pae, paging::Mode::Compatibility4, paging::Mode::Long64_4Level,
                       paging::Mode::Compatibility5, paging::Mode::Long64_5Level}) {
    EXPECT_EQ(mode_from_short_name(short_name(m)), m);
  }
  EXPECT_FALSE(mode_from_short_name("bogus"));
}

TEST(ModeMatrixClassify, EveryDeviationHasRuleDescriptionAndReproducer) {
  for (const auto& d : known_deviations()) {
    EXPECT_FALSE(d.id.empty());
    EXPECT_NE(d.rule.find("SDM"), std::string::npos) << d.id;
    EXPECT_FALSE(d.description.empty()) << d.id;
    EXPECT_EQ(d.reproducer.rfind("pagelab modes", 0), 0u) << d.id;
    EXPECT_TRUE(d.matches) << d.id;
  }
}

}  // namespace
}  // namespace pagelab::lab

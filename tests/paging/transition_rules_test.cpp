// One test per control-write rule. Each names the SDM place that states the rule:
// vol. 3 §2.5 (control registers), §4.1.1/§4.1.2 and figure 4-1 (paging modes and
// their changes), §4.4.1 (PDPTE loading), §4.10.1 (PCIDs), §9.8.5 (IA-32e mode
// activation/deactivation), §3.4.5 (L and D bits); vol. 2 MOV CR / WRMSR / JMP
// exception lists; vol. 4 table 2-2 (IA32_EFER).
#include <gtest/gtest.h>

#include <stdexcept>

#include "pagelab/paging/transition.hpp"

namespace pagelab::paging {
namespace {

constexpr unsigned kGp = 13;

TransitionFeatures all_features() {
  TransitionFeatures f;
  f.pcid = f.smep = f.smap = f.pku = f.la57 = f.umip = f.cet = true;
  return f;
}

// Protected mode without paging: PE=1, PG=0, PAE=0, LME=0.
ControlState protected_mode() {
  ControlState s;
  s.cr0 = Cr0::Pe | Cr0::Et;
  s.cr3 = 0x1000;
  return s;
}

ControlState paging32() {
  ControlState s = protected_mode();
  s.cr0 |= Cr0::Pg;
  return s;
}

ControlState pae_paging() {
  ControlState s = paging32();
  s.cr4 |= Cr4::Pae;
  return s;
}

ControlState compat4() {
  ControlState s = protected_mode();
  s.cr0 |= Cr0::Pg;
  s.cr4 |= Cr4::Pae;
  s.efer |= Efer::Lme | Efer::Lma;
  return s;
}

ControlState long64() {
  ControlState s = compat4();
  s.cs_l = true;
  s.cs_d = false;
  return s;
}

void expect_gp(const Verdict& v, const ControlState& before, std::string_view rule_part) {
  EXPECT_FALSE(v.allowed);
  ASSERT_TRUE(v.vector.has_value());
  EXPECT_EQ(*v.vector, kGp);
  EXPECT_EQ(v.error_code, 0u);
  EXPECT_EQ(v.after, before) << "a refused write changes nothing";
  EXPECT_EQ(v.mode_after, mode_of(before));
  EXPECT_NE(v.rule.find(rule_part), std::string::npos) << v.rule;
}

void expect_ok(const Verdict& v, Mode mode_after) {
  EXPECT_TRUE(v.allowed) << v.rule;
  EXPECT_FALSE(v.vector.has_value());
  EXPECT_EQ(v.mode_after, mode_after) << mode_name(v.mode_after) << " / " << v.rule;
  EXPECT_EQ(mode_of(v.after), v.mode_after);
}

TEST(TransitionModeOf, NamesEachModeFromTheControlBits) {
  EXPECT_EQ(mode_of(ControlState{}), Mode::Real);
  EXPECT_EQ(mode_of(protected_mode()), Mode::Protected);
  EXPECT_EQ(mode_of(paging32()), Mode::Paging32);
  EXPECT_EQ(mode_of(pae_paging()), Mode::Pae);
  EXPECT_EQ(mode_of(compat4()), Mode::Compatibility4);
  EXPECT_EQ(mode_of(long64()), Mode::Long64_4Level);
  ControlState five = long64();
  five.cr4 |= Cr4::La57;
  EXPECT_EQ(mode_of(five), Mode::Long64_5Level);
  five.cs_l = false;
  EXPECT_EQ(mode_of(five), Mode::Compatibility5);
  // LA57 means nothing outside IA-32e mode (SDM 4.1.1).
  ControlState pae57 = pae_paging();
  pae57.cr4 |= Cr4::La57;
  EXPECT_EQ(mode_of(pae57), Mode::Pae);
}

TEST(TransitionModeOf, StatesNoCpuCanBeInAreInconsistent) {
  ControlState s;
  s.cr0 = Cr0::Pg;  // PG without PE
  EXPECT_EQ(mode_of(s), Mode::Inconsistent);
  ControlState lma = protected_mode();
  lma.efer = Efer::Lma | Efer::Lme;  // LMA without PG
  EXPECT_EQ(mode_of(lma), Mode::Inconsistent);
  EXPECT_THROW(evaluate(s, Write::Cr0, 0, {}), std::invalid_argument);
}

TEST(Cr0Rule, PgWithPeClearIsGp) {
  // SDM vol. 2 MOV CR0: setting PG while PE=0 raises #GP(0).
  const ControlState real{};
  expect_gp(evaluate(real, Write::Cr0, Cr0::Pg, {}), real, "PE=0");
}

TEST(Cr0Rule, ClearingPeWhilePagingIsGp) {
  expect_gp(evaluate(paging32(), Write::Cr0, paging32().cr0 & ~Cr0::Pe, {}), paging32(), "PE=0");
}

TEST(Cr0Rule, PeAndPgTogetherFromRealModeGiveThirtyTwoBitPaging) {
  expect_ok(evaluate(ControlState{}, Write::Cr0, Cr0::Pe | Cr0::Pg, {}), Mode::Paging32);
}

TEST(Cr0Rule, NwWithoutCdIsGp) {
  // SDM vol. 2 MOV CR0: NW=1 with CD=0 is an invalid combination.
  const ControlState s = protected_mode();
  expect_gp(evaluate(s, Write::Cr0, s.cr0 | Cr0::Nw, {}), s, "NW");
  expect_ok(evaluate(s, Write::Cr0, s.cr0 | Cr0::Nw | Cr0::Cd, {}), Mode::Protected);
}

TEST(Cr0Rule, UpperHalfReservedIn64BitMode) {
  // SDM 2.5: bits 63:32 of CR0 are reserved; writing 1 raises #GP(0).
  expect_gp(evaluate(long64(), Write::Cr0, long64().cr0 | bit(32), {}), long64(), "63:32");
}

TEST(Cr0Rule, UpperHalfCannotBeExpressedOutside64BitMode) {
  // Outside 64-bit mode MOV CR0 has a 32-bit operand: only bits 31:0 are written.
  const ControlState s = protected_mode();
  const Verdict v = evaluate(s, Write::Cr0, s.cr0 | bit(40), {});
  expect_ok(v, Mode::Protected);
  EXPECT_EQ(v.after.cr0 & Cr0Layout::Upper, 0u);
}

TEST(Cr0Rule, LowReservedBitsAreIgnoredAndEtIsHardwired) {
  // SDM vol. 2 MOV CR: reserved bits of CR0 stay clear; SDM 2.5: ET is hardcoded to 1.
  const Verdict v = evaluate(ControlState{}, Write::Cr0, Cr0::Pe | bit(7), {});
  expect_ok(v, Mode::Protected);
  EXPECT_EQ(v.after.cr0, Cr0::Pe | Cr0::Et);
}

TEST(Cr0Rule, SettingPgWithLmeAndNoPaeIsGp) {
  // SDM 4.1.2: "Paging cannot be enabled ... while CR4.PAE = 0 and IA32_EFER.LME = 1".
  ControlState s = protected_mode();
  s.efer = Efer::Lme;
  expect_gp(evaluate(s, Write::Cr0, s.cr0 | Cr0::Pg, {}), s, "PAE=0");
}

TEST(Cr0Rule, SettingPgWithLmeAndPaeActivatesIa32e) {
  // SDM 9.8.5: enabling paging with LME=1 sets LMA=1; CS.L=0 so compatibility mode.
  ControlState s = protected_mode();
  s.cr4 = Cr4::Pae;
  s.efer = Efer::Lme;
  const Verdict v = evaluate(s, Write::Cr0, s.cr0 | Cr0::Pg, {});
  expect_ok(v, Mode::Compatibility4);
  EXPECT_TRUE(v.after.efer & Efer::Lma);
}

TEST(Cr0Rule, ActivatingIa32eWithCsLSetIsGp) {
  // SDM vol. 2 MOV CR0: activating IA-32e mode while the current CS has L=1 → #GP(0).
  ControlState s = protected_mode();
  s.cr4 = Cr4::Pae;
  s.efer = Efer::Lme;
  s.cs_l = true;
  s.cs_d = false;
  expect_gp(evaluate(s, Write::Cr0, s.cr0 | Cr0::Pg, {}), s, "CS has L=1");
}

TEST(Cr0Rule, SettingPgWithoutPaeOrLmeIsThirtyTwoBitPaging) {
  expect_ok(evaluate(protected_mode(), Write::Cr0, protected_mode().cr0 | Cr0::Pg, {}),
            Mode::Paging32);
}

TEST(Cr0Rule, SettingPgWithPaeIsPaePaging) {
  ControlState s = protected_mode();
  s.cr4 = Cr4::Pae;
  const Verdict v = evaluate(s, Write::Cr0, s.cr0 | Cr0::Pg, {});
  expect_ok(v, Mode::Pae);
  EXPECT_TRUE(v.loads_pdptes);  // SDM 4.4.1
}

TEST(Cr0Rule, ClearingPgIn64BitModeIsGp) {
  // SDM vol. 2 MOV CR0, 64-bit mode exceptions: clearing PG raises #GP(0).
  expect_gp(evaluate(long64(), Write::Cr0, long64().cr0 & ~Cr0::Pg, {}), long64(), "64-bit mode");
}

TEST(Cr0Rule, ClearingPgInCompatibilityModeClearsLma) {
  // SDM 9.8.5.4: from compatibility mode, clearing PG deactivates IA-32e mode.
  const Verdict v = evaluate(compat4(), Write::Cr0, compat4().cr0 & ~Cr0::Pg, {});
  expect_ok(v, Mode::Protected);
  EXPECT_FALSE(v.after.efer & Efer::Lma);
  EXPECT_TRUE(v.after.efer & Efer::Lme) << "LME stays; only LMA follows PG";
}

TEST(Cr0Rule, ClearingPgWithPcideIsGp) {
  // SDM vol. 2 MOV CR0: clearing PG while CR4.PCIDE=1 raises #GP(0).
  ControlState s = compat4();
  s.cr4 |= Cr4::Pcide;
  expect_gp(evaluate(s, Write::Cr0, s.cr0 & ~Cr0::Pg, all_features()), s, "PCIDE");
}

TEST(Cr0Rule, ClearingWpWithCetIsGp) {
  // SDM 2.5: CR0.WP cannot be cleared while CR4.CET=1.
  ControlState s = long64();
  s.cr0 |= Cr0::Wp;
  s.cr4 |= Cr4::Cet;
  expect_gp(evaluate(s, Write::Cr0, s.cr0 & ~Cr0::Wp, all_features()), s, "CET");
}

TEST(Cr4Rule, ClearingPaeInIa32eModeIsGp) {
  // SDM 4.1.2: CR4.PAE cannot be cleared while IA-32e paging is active.
  expect_gp(evaluate(long64(), Write::Cr4, 0, {}), long64(), "PAE");
  expect_gp(evaluate(compat4(), Write::Cr4, 0, {}), compat4(), "PAE");
}

TEST(Cr4Rule, ClearingPaeInPaePagingSwitchesToThirtyTwoBit) {
  // Figure 4-1: PAE paging --clear PAE--> 32-bit paging.
  expect_ok(evaluate(pae_paging(), Write::Cr4, 0, {}), Mode::Paging32);
}

TEST(Cr4Rule, ChangingLa57InIa32eModeIsGp) {
  // SDM 4.1.2 / MOV CR4: CR4.LA57 cannot be modified while LMA=1.
  expect_gp(evaluate(long64(), Write::Cr4, long64().cr4 | Cr4::La57, all_features()), long64(),
            "LA57");
  ControlState five = long64();
  five.cr4 |= Cr4::La57;
  expect_gp(evaluate(five, Write::Cr4, five.cr4 & ~Cr4::La57, all_features()), five, "LA57");
}

TEST(Cr4Rule, La57MayChangeOutsideIa32eMode) {
  expect_ok(evaluate(protected_mode(), Write::Cr4, Cr4::La57 | Cr4::Pae, all_features()),
            Mode::Protected);
  expect_ok(evaluate(pae_paging(), Write::Cr4, Cr4::La57 | Cr4::Pae, all_features()), Mode::Pae);
}

TEST(Cr4Rule, PcideOutsideIa32eModeIsGp) {
  // SDM 4.10.1: CR4.PCIDE can be set only in IA-32e mode.
  expect_gp(evaluate(pae_paging(), Write::Cr4, Cr4::Pae | Cr4::Pcide, all_features()), pae_paging(),
            "IA-32e");
}

TEST(Cr4Rule, PcideWithNonZeroCr3LowBitsIsGp) {
  // SDM vol. 2 MOV CR4: setting PCIDE while CR3[11:0] != 0 raises #GP(0).
  ControlState s = long64();
  s.cr3 = 0x1000 | Cr3::Pwt;
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::Pcide, all_features()), s, "CR3[11:0]");
  s.cr3 = 0x1000;
  expect_ok(evaluate(s, Write::Cr4, s.cr4 | Cr4::Pcide, all_features()), Mode::Long64_4Level);
}

TEST(Cr4Rule, ReservedBitIsGp) {
  // SDM 2.5: writing 1 to a reserved CR4 bit raises #GP(0). Bit 15 is reserved.
  expect_gp(evaluate(protected_mode(), Write::Cr4, Cr4More::ReservedProbe, all_features()),
            protected_mode(), "bit 15");
  expect_gp(evaluate(long64(), Write::Cr4, long64().cr4 | bit(63), all_features()), long64(),
            "bit 63");
}

TEST(Cr4Rule, FeatureBitsWithoutTheFeatureAreReserved) {
  // SDM 2.5: CR4 bits of features the processor lacks are reserved.
  const TransitionFeatures none{};  // no LA57, PKU, SMEP, SMAP, PCID, UMIP
  const ControlState s = long64();
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::La57, none), s, "LA57");
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::Pke, none), s, "PKE");
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::Smep, none), s, "SMEP");
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::Smap, none), s, "SMAP");
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::Pcide, none), s, "PCIDE");
  expect_gp(evaluate(s, Write::Cr4, s.cr4 | Cr4::Umip, none), s, "UMIP");
  const TransitionFeatures all = all_features();
  for (std::uint64_t b : {Cr4::Pke, Cr4::Smep, Cr4::Smap, Cr4::Umip}) {
    expect_ok(evaluate(s, Write::Cr4, s.cr4 | b, all), Mode::Long64_4Level);
  }
}

TEST(Cr4Rule, CetNeedsWp) {
  // SDM 2.5: CR4.CET cannot be set while CR0.WP=0.
  expect_gp(evaluate(long64(), Write::Cr4, long64().cr4 | Cr4::Cet, all_features()), long64(),
            "WP");
}

TEST(Cr3Rule, BitsAboveMaxPhyAddrAreReservedInIa32eMode) {
  // SDM vol. 2 MOV CR3 (64-bit mode): reserved CR3 bits set raise #GP(0).
  TransitionFeatures f;
  f.maxphyaddr = 48;
  expect_gp(evaluate(long64(), Write::Cr3, 0x1000 | bit(48), f), long64(), "MAXPHYADDR");
  expect_gp(evaluate(long64(), Write::Cr3, 0x1000 | bit(52), f), long64(), "MAXPHYADDR");
  expect_ok(evaluate(long64(), Write::Cr3, 0x1000 | bit(47), f), Mode::Long64_4Level);
}

TEST(Cr3Rule, Bit63IsReservedWithoutPcide) {
  expect_gp(evaluate(long64(), Write::Cr3, 0x2000 | Cr3::NoFlush, {}), long64(), "no-flush");
}

TEST(Cr3Rule, Bit63IsTheNoFlushHintWithPcideAndIsNotStored) {
  // SDM 4.10.4.1: with PCIDE=1, bit 63 of the source is not written to CR3.
  ControlState s = long64();
  s.cr4 |= Cr4::Pcide;
  const Verdict v = evaluate(s, Write::Cr3, 0x2000 | 5 | Cr3::NoFlush, all_features());
  expect_ok(v, Mode::Long64_4Level);
  EXPECT_EQ(v.after.cr3, 0x2005u);
}

TEST(Cr3Rule, PaeLoadWithReservedPdpteBitsIsGp) {
  // SDM 4.4.1 / table 4-8: a present PDPTE with bits 2:1, 8:5 or 63:MAXPHYADDR set makes
  // the PDPTE load (here MOV CR3 in PAE paging) raise #GP(0).
  const std::array<std::uint64_t, 4> ok{0x3001, 0x4001, 0, 0};
  expect_ok(evaluate(pae_paging(), Write::Cr3, 0x2000, {}, ok), Mode::Pae);
  for (std::uint64_t bad : {std::uint64_t{0x3001 | bit(1)}, std::uint64_t{0x3001 | bit(5)},
                            std::uint64_t{0x3001 | bit(63)}, std::uint64_t{0x3001 | bit(48)}}) {
    const std::array<std::uint64_t, 4> p{0x3001, 0x4001, bad, 0};
    const Verdict v = evaluate(pae_paging(), Write::Cr3, 0x2000, {}, p);
    expect_gp(v, pae_paging(), "PDPTE 2");
  }
  // Not-present entries are not checked.
  const std::array<std::uint64_t, 4> np{0x3001, bit(63) | bit(1), 0, 0};
  expect_ok(evaluate(pae_paging(), Write::Cr3, 0x2000, {}, np), Mode::Pae);
}

TEST(Cr3Rule, EnablingPaePagingChecksPdptesButThirtyTwoBitPagingDoesNot) {
  const std::array<std::uint64_t, 4> bad{0x3001 | bit(2), 0, 0, 0};
  ControlState s = protected_mode();
  s.cr4 = Cr4::Pae;
  expect_gp(evaluate(s, Write::Cr0, s.cr0 | Cr0::Pg, {}, bad), s, "PDPTE 0");
  const Verdict v = evaluate(protected_mode(), Write::Cr0, protected_mode().cr0 | Cr0::Pg, {}, bad);
  expect_ok(v, Mode::Paging32);
  EXPECT_FALSE(v.loads_pdptes);
  // 32-bit paging → PAE paging by setting CR4.PAE loads them too.
  expect_gp(evaluate(paging32(), Write::Cr4, Cr4::Pae, {}, bad), paging32(), "PDPTE 0");
}

TEST(Cr3Rule, Ia32eCr3LoadDoesNotLoadPdptes) {
  const std::array<std::uint64_t, 4> bad{0x3001 | bit(2), 0, 0, 0};
  const Verdict v = evaluate(long64(), Write::Cr3, 0x5000, {}, bad);
  expect_ok(v, Mode::Long64_4Level);
  EXPECT_FALSE(v.loads_pdptes);
}

TEST(EferRule, ChangingLmeWhilePagingIsGp) {
  // SDM 4.1.2: IA32_EFER.LME cannot be modified while CR0.PG=1.
  expect_gp(evaluate(paging32(), Write::Efer, Efer::Lme, {}), paging32(), "LME");
  expect_gp(evaluate(pae_paging(), Write::Efer, Efer::Lme, {}), pae_paging(), "LME");
  expect_gp(evaluate(compat4(), Write::Efer, Efer::Lma, {}), compat4(), "LME");
}

TEST(EferRule, ReservedBitIsGp) {
  expect_gp(evaluate(protected_mode(), Write::Efer, EferMore::ReservedProbe, {}), protected_mode(),
            "bit 1");
  // AMD-only bits are reserved on the CPU this model describes.
  expect_gp(evaluate(protected_mode(), Write::Efer, EferMore::Svme, {}), protected_mode(), "SVME");
}

TEST(EferRule, LmeWithoutLongModeIsGp) {
  TransitionFeatures f;
  f.lm = false;
  expect_gp(evaluate(protected_mode(), Write::Efer, Efer::Lme, f), protected_mode(), "LME");
}

TEST(EferRule, NxeWithoutNxIsGp) {
  TransitionFeatures f;
  f.nx = false;
  expect_gp(evaluate(protected_mode(), Write::Efer, Efer::Nxe, f), protected_mode(), "NXE");
  expect_ok(evaluate(protected_mode(), Write::Efer, Efer::Nxe, {}), Mode::Protected);
}

TEST(EferRule, LmaIsReadOnly) {
  // SDM vol. 4 table 2-2: LMA is read-only; WRMSR leaves it as the CPU set it.
  const Verdict set = evaluate(protected_mode(), Write::Efer, Efer::Lma, {});
  expect_ok(set, Mode::Protected);
  EXPECT_FALSE(set.after.efer & Efer::Lma);
  const Verdict keep = evaluate(long64(), Write::Efer, Efer::Lme | Efer::Nxe, {});
  expect_ok(keep, Mode::Long64_4Level);
  EXPECT_TRUE(keep.after.efer & Efer::Lma);
}

TEST(FarJumpRule, LAndDSetInIa32eModeIsGpWithSelector) {
  // SDM vol. 2 JMP: in IA-32e mode a code segment with L=1 and D=1 → #GP(selector).
  const Verdict v =
      evaluate(compat4(), Write::FarJumpCs, FarJumpOperand::make(true, true, 0x2b), {});
  EXPECT_FALSE(v.allowed);
  ASSERT_TRUE(v.vector);
  EXPECT_EQ(*v.vector, kGp);
  EXPECT_EQ(v.error_code, 0x28u);
  EXPECT_EQ(v.after, compat4());
}

TEST(FarJumpRule, LSelects64BitModeInIa32e) {
  expect_ok(evaluate(compat4(), Write::FarJumpCs, FarJumpOperand::make(true, false, 0x08), {}),
            Mode::Long64_4Level);
  expect_ok(evaluate(long64(), Write::FarJumpCs, FarJumpOperand::make(false, true, 0x10), {}),
            Mode::Compatibility4);
}

TEST(FarJumpRule, LIsIgnoredOutsideIa32eButBlocksActivation) {
  // SDM 3.4.5: outside IA-32e mode L is reserved and does not change the mode; the
  // MOV CR0 rule then refuses to activate IA-32e mode with CS.L=1.
  ControlState s = protected_mode();
  s.cr4 = Cr4::Pae;
  s.efer = Efer::Lme;
  const Verdict jump = evaluate(s, Write::FarJumpCs, FarJumpOperand::make(true, true, 0x08), {});
  expect_ok(jump, Mode::Protected);
  EXPECT_TRUE(jump.after.cs_l);
  const Verdict pg = evaluate(jump.after, Write::Cr0, jump.after.cr0 | Cr0::Pg, {});
  EXPECT_FALSE(pg.allowed);
}

TEST(FarJumpRule, RealModeJumpKeepsCsAttributes) {
  ControlState real;
  real.cs_d = false;
  const Verdict v = evaluate(real, Write::FarJumpCs, FarJumpOperand::make(true, true, 0x08), {});
  expect_ok(v, Mode::Real);
  EXPECT_FALSE(v.after.cs_l);
  EXPECT_FALSE(v.after.cs_d);
}

}  // namespace
}  // namespace pagelab::paging

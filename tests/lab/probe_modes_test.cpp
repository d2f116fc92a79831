// The probe boots in real mode and switches itself through the modes; after each
// step the registers it reports (read inside the guest) must be what the SDM says
// that step produces.
#include <gtest/gtest.h>

#include "lab/lab_fixture.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/machine/cpu_features.hpp"
#include "pagelab/lab/modes/deviations.hpp"
#include "pagelab/lab/platform/host_machine.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::test {
namespace {

using lab::ProbeReport;
using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::PagingMode;

constexpr std::uint32_t kGeneralProtection = 13;

PagingMode mode_of(const ProbeReport& r) {
  return paging::paging_mode_of(r.cr0, r.cr4, r.efer);
}

using ProbeModes = LabTest;

TEST_F(ProbeModes, BootsInRealMode) {
  const auto& r = lab().last_report();
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.code_bits, 16u);
  EXPECT_EQ(r.cr0 & Cr0::Pe, 0u);
  EXPECT_EQ(r.cr0 & Cr0::Pg, 0u);
  EXPECT_EQ(r.cs, 0u);
}

TEST_F(ProbeModes, EntersProtectedModeWithItsOwnGdt) {
  const auto r = lab().command(PROBE_CMD_ENTER_PROT);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 32u);
  EXPECT_NE(r.cr0 & Cr0::Pe, 0u);
  EXPECT_EQ(mode_of(r), PagingMode::None);
  EXPECT_EQ(r.cs, PROBE_SEL_CODE32);
  EXPECT_EQ(r.ss, PROBE_SEL_DATA32);
}

TEST_F(ProbeModes, FourLevelLongModeAndBackDownToRealMode) {
  lab().enter_protected();
  lab().enter_long(PagingMode::Level4);
  auto r = lab().last_report();
  EXPECT_EQ(r.code_bits, 64u);
  EXPECT_EQ(mode_of(r), PagingMode::Level4);
  EXPECT_NE(r.efer & Efer::Lma, 0u);
  EXPECT_EQ(r.cs, PROBE_SEL_CODE64);
  EXPECT_EQ(r.cr3, lab().mode_tables().level4.value());

  r = lab().command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE32);  // compatibility mode
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 32u);
  EXPECT_NE(r.efer & Efer::Lma, 0u);

  r = lab().command(PROBE_CMD_WRITE_CR0, r.cr0 & ~Cr0::Pg);  // PG=0 leaves IA-32e mode
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.efer & Efer::Lma, 0u);
  EXPECT_NE(r.efer & Efer::Lme, 0u);

  r = lab().command(PROBE_CMD_WRMSR, Efer::Msr, r.efer & ~Efer::Lme);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.efer & Efer::Lme, 0u);

  r = lab().command(PROBE_CMD_ENTER_REAL);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 16u);
  EXPECT_EQ(r.cr0 & Cr0::Pe, 0u);
}

TEST_F(ProbeModes, ClearingPgIn64BitModeRaisesGpAndChangesNothing) {
  lab().enter_protected();
  lab().enter_long(PagingMode::Level4);
  const auto before = lab().last_report();
  // SDM 2.5 / 9.8.5.4: clearing CR0.PG while CS.L=1 is #GP(0).
  const auto r = lab().command(PROBE_CMD_WRITE_CR0, before.cr0 & ~Cr0::Pg);
  ASSERT_TRUE(r.faulted());
  EXPECT_EQ(r.vector, kGeneralProtection);
  EXPECT_EQ(r.error_code, 0u);
  EXPECT_EQ(r.cr0, before.cr0);
  EXPECT_EQ(r.code_bits, 64u);
}

TEST_F(ProbeModes, PagingWithLmeButNoPaeRaisesGp) {
  lab().enter_protected();
  auto r = lab().command(PROBE_CMD_WRITE_CR3, lab().mode_tables().level4.value());
  if (lab().backend_name() == "kvm") {
    paging::ControlState lme_without_pae;
    lme_without_pae.cr0 = r.cr0;
    lme_without_pae.cr4 = r.cr4;
    lme_without_pae.efer = r.efer | Efer::Lme;
    if (auto why = lab::platform_wedge(kvm::detect_flavour().name, lme_without_pae)) {
      GTEST_SKIP() << *why;
    }
  }
  r = lab().command(PROBE_CMD_WRMSR, Efer::Msr, r.efer | Efer::Lme);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  // SDM 9.8.5: setting PG with LME=1 and PAE=0 is #GP(0); nothing changes.
  r = lab().command(PROBE_CMD_WRITE_CR0, r.cr0 | Cr0::Pg);
  ASSERT_TRUE(r.faulted());
  EXPECT_EQ(r.vector, kGeneralProtection);
  EXPECT_EQ(r.cr0 & Cr0::Pg, 0u);
  EXPECT_EQ(r.efer & Efer::Lma, 0u);
  EXPECT_EQ(r.code_bits, 32u);
}

// Legacy paging: the architecture allows it; a platform that refuses it is skipped
// with the refusal it showed, never counted as a pass.
void enter_legacy(lab::Lab& lab, PagingMode mode) {
  lab.enter_protected();
  const bool pae = mode == PagingMode::Pae;
  const auto& t = lab.mode_tables();
  lab.command(PROBE_CMD_WRITE_CR3, (pae ? t.pae : t.bits32).value());
  lab.command(PROBE_CMD_WRITE_CR4, pae ? Cr4::Pae : Cr4::Pse);
  const auto r = lab.command(PROBE_CMD_WRITE_CR0, lab.last_report().cr0 | Cr0::Pg);
  if (r.faulted()) {
    GTEST_SKIP() << "this platform refuses " << paging::to_string(mode)
                 << " paging: MOV CR0 setting PG raised " << r.outcome_text();
  }
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(mode_of(r), mode);
  EXPECT_EQ(r.code_bits, 32u);
  const auto off = lab.command(PROBE_CMD_WRITE_CR0, r.cr0 & ~Cr0::Pg);
  EXPECT_EQ(mode_of(off), PagingMode::None);
}

TEST_F(ProbeModes, ThirtyTwoBitPaging) {
  enter_legacy(lab(), PagingMode::Bits32);
}
TEST_F(ProbeModes, PaePaging) {
  enter_legacy(lab(), PagingMode::Pae);
}

TEST_F(ProbeModes, FiveLevelPaging) {
  if (!lab().cpu().has(lab::cpuid::La57)) {
    GTEST_SKIP() << "CPUID offers no LA57 on this platform";
  }
  lab().enter_protected();
  lab().enter_long(PagingMode::Level5);
  const auto& r = lab().last_report();
  EXPECT_EQ(mode_of(r), PagingMode::Level5);
  EXPECT_NE(r.cr4 & Cr4::La57, 0u);
}

TEST_F(ProbeModes, CpuidInTheGuestMatchesTheTableWeGaveIt) {
  const auto r = lab().command(PROBE_CMD_CPUID, 0, 0);
  ASSERT_TRUE(r.ok());
  // Vendor string: EBX, EDX, ECX.
  char vendor[13] = {};
  const auto ebx = static_cast<std::uint32_t>(r.value >> 32);
  const auto ecx = static_cast<std::uint32_t>(r.value2);
  const auto edx = static_cast<std::uint32_t>(r.value2 >> 32);
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  EXPECT_EQ(std::string(vendor), lab().cpu().vendor());
}

TEST_F(ProbeModes, CommandsOutsideTheirModeAreRefusedByTheProbe) {
  // ENTER_REAL only exists in the 32-bit dispatcher; real mode answers "bad command".
  const auto r = lab().command(PROBE_CMD_ENTER_REAL);
  EXPECT_EQ(r.status, lab::ProbeStatus::BadCommand);
  EXPECT_EQ(r.code_bits, 16u);
  // The probe is still alive and answers.
  EXPECT_TRUE(lab().command(PROBE_CMD_REPORT).ok());
}

TEST_F(ProbeModes, RealModeMovCr0AndFarJump) {
  auto r = lab().command(PROBE_CMD_WRITE_CR0, lab().last_report().cr0 | Cr0::Mp);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 16u);
  EXPECT_NE(r.cr0 & Cr0::Mp, 0u);
  // SDM MOV CR0: PG with PE=0 raises #GP(0) (through the real-mode IVT: no error code).
  r = lab().command(PROBE_CMD_WRITE_CR0, r.cr0 | Cr0::Pg);
  EXPECT_TRUE(r.faulted());
  EXPECT_EQ(r.vector, kGeneralProtection);
  EXPECT_EQ(r.cr0 & Cr0::Pg, 0u);
  // A real-mode far jump loads CS with the selector (base selector * 16) and the probe
  // goes on in that segment, up to protected mode.
  r = lab().command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE16);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 16u);
  EXPECT_EQ(r.cs, PROBE_SEL_CODE16);
  EXPECT_EQ(r.cr0 & Cr0::Pe, 0u);
  r = lab().command(PROBE_CMD_ENTER_PROT);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.cs, PROBE_SEL_CODE32);
}

TEST_F(ProbeModes, FarJumpsLandOnPadsOfTheirWidthAndComeBack) {
  lab().enter_protected();
  // SDM 3.4.5: D=0 is 16-bit code; outside IA-32e mode so is the 64-bit segment (L is
  // ignored, D=0); L=1 D=1 there is 32-bit code.
  for (const std::uint32_t sel : {PROBE_SEL_CODE16, PROBE_SEL_CODE64, PROBE_SEL_CODE_L1D1}) {
    auto r = lab().command(PROBE_CMD_JUMP_CS, sel);
    ASSERT_TRUE(r.ok()) << r.outcome_text();
    EXPECT_EQ(r.cs, sel);
    EXPECT_EQ(r.code_bits, sel == PROBE_SEL_CODE_L1D1 ? 32u : 16u);
    // The next command runs in the 32-bit dispatcher.
    r = lab().command(PROBE_CMD_REPORT);
    EXPECT_EQ(r.code_bits, 32u);
    EXPECT_EQ(r.cs, PROBE_SEL_CODE32);
  }
  lab().enter_long(PagingMode::Level4);
  // SDM JMP: in IA-32e mode L=1 with D=1 raises #GP(selector).
  if (lab().backend_name() == "kvm" && lab::has_platform_key(true, "tcg-under-kvm")) {
    // Known deviation tcg-under-kvm-vmrun-refuses-l1-d1-code-segment: QEMU's emulated
    // VMRUN refuses the segment KVM loaded, and the vCPU cannot run again.
    try {
      const auto r = lab().command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE_L1D1);
      EXPECT_TRUE(r.faulted() && r.vector == kGeneralProtection) << r.outcome_text();
    } catch (const lab::GuestStopped& s) {
      EXPECT_EQ(s.kind(), "entry failed") << s.report();
      lab().reset();
      lab().enter_protected();
      lab().enter_long(PagingMode::Level4);
    }
  } else {
    const auto r = lab().command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE_L1D1);
    EXPECT_TRUE(r.faulted());
    EXPECT_EQ(r.vector, kGeneralProtection);
    EXPECT_EQ(r.error_code, PROBE_SEL_CODE_L1D1);
    EXPECT_EQ(r.code_bits, 64u);
  }
  // D=0, L=0: compatibility mode, 16-bit code.
  auto r = lab().command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE16);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 16u);
  EXPECT_NE(r.efer & Efer::Lma, 0u);
  r = lab().command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE64);
  ASSERT_TRUE(r.ok()) << r.outcome_text();
  EXPECT_EQ(r.code_bits, 64u);
}

TEST_F(ProbeModes, OneVmExitPerCommand) {
  const auto before = lab().exits();
  for (int i = 0; i < 10; ++i) lab().command(PROBE_CMD_REPORT);
  EXPECT_EQ(lab().exits() - before, 10u);
}

}  // namespace
}  // namespace pagelab::test

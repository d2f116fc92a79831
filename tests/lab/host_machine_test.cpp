// Which deviation list applies: nested detection (CPUID hypervisor bit + DMI vendor
// QEMU, not signed by a KVM below) and KVM's MMU (shadow paging vs EPT/NPT).
#include "pagelab/lab/platform/host_machine.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "pagelab/lab/modes/deviations.hpp"

namespace pagelab::lab {
namespace {

TEST(HostMachine, QemuTcgNeedsTheHypervisorBitTheDmiVendorAndNoKvmSignature) {
  HostMachine h;
  EXPECT_FALSE(h.in_qemu_tcg());
  EXPECT_NE(h.describe().find("bare metal"), std::string::npos);
  h.hypervisor_bit = true;
  h.dmi_vendor = "QEMU";
  h.hypervisor_signature = "TCGTCGTCGTCG";
  EXPECT_TRUE(h.in_qemu_tcg());
  EXPECT_NE(h.describe().find("QEMU TCG"), std::string::npos) << h.describe();
  h.hypervisor_signature = "KVMKVMKVM";  // QEMU accelerated by KVM: hardware paging below
  EXPECT_TRUE(h.in_qemu());
  EXPECT_FALSE(h.in_qemu_tcg());
  h.hypervisor_signature.clear();
  h.dmi_vendor = "Amazon EC2";
  EXPECT_FALSE(h.in_qemu());
  h.dmi_vendor = "QEMU";
  h.hypervisor_bit = false;
  EXPECT_FALSE(h.in_qemu_tcg());
}

TEST(HostMachine, ShadowMmuIsPvmOrNptOrEptOff) {
  kvm::Flavour f;
  f.name = "kvm_pvm";
  EXPECT_TRUE(kvm_shadow_mmu(f));
  f.name = "kvm_amd";
  f.parameters["kvm_amd.npt"] = "Y";
  EXPECT_FALSE(kvm_shadow_mmu(f));
  f.parameters["kvm_amd.npt"] = "N";
  EXPECT_TRUE(kvm_shadow_mmu(f));
  f.name = "kvm_intel";
  f.parameters["kvm_intel.ept"] = "Y";
  EXPECT_FALSE(kvm_shadow_mmu(f));
  f.parameters["kvm_intel.ept"] = "N";
  EXPECT_TRUE(kvm_shadow_mmu(f));
}

TEST(HostMachine, QemuBackendHasOnlyTheTcgKey) {
  EXPECT_EQ(platform_keys(false), std::vector<std::string>{"tcg"});
  const auto& kvm = platform_keys(true);
  EXPECT_EQ(kvm.front(), "kvm");
  // TCG's page walks show through KVM only when KVM is nested in TCG with nested paging.
  const bool tcg_walks =
      has_platform_key(true, "tcg-under-kvm") && !has_platform_key(true, "kvm-shadow-mmu");
  EXPECT_EQ(std::count(kvm.begin(), kvm.end(), "tcg"), tcg_walks ? 1 : 0);
}

// A nested-only deviation applies to a KVM case exactly where this machine is a KVM
// inside QEMU TCG, and never to QEMU's own cases.
TEST(HostMachine, TcgUnderKvmDeviationsFollowTheDetection) {
  const auto& list = known_deviations();
  const auto it = std::find_if(list.begin(), list.end(),
                               [](const Deviation& d) { return d.platform == "tcg-under-kvm"; });
  ASSERT_NE(it, list.end());
  MatrixCase c;
  c.platform = "kvm_amd";
  EXPECT_EQ(deviation_applies(*it, c), has_platform_key(true, "tcg-under-kvm"));
  c.platform = "qemu-tcg";
  EXPECT_FALSE(deviation_applies(*it, c));
}

}  // namespace
}  // namespace pagelab::lab

#pragma once
// Where pagelab itself runs (bare metal, or a VM, and whose) and which MMU KVM uses:
// what decides which list of known platform deviations applies. A KVM inside QEMU TCG
// (scripts/nested-kvm.sh) runs KVM's real code on an emulated CPU, and shows TCG's
// departures as well as KVM's.
#include <string>
#include <string_view>
#include <vector>

#include "pagelab/kvm/flavour.hpp"

namespace pagelab::lab {

struct HostMachine {
  bool hypervisor_bit = false;       // CPUID.01H:ECX[31], as pagelab's own process sees it
  std::string hypervisor_signature;  // CPUID 40000000H EBX:ECX:EDX ("KVMKVMKVM", "TCGTCGTCGTCG")
  std::string dmi_vendor;            // /sys/class/dmi/id/sys_vendor ("QEMU")
  // Inside a QEMU virtual machine: the hypervisor bit and DMI vendor QEMU.
  [[nodiscard]] bool in_qemu() const;
  // Inside QEMU's software CPU: in QEMU and not accelerated by a KVM below (which
  // would sign CPUID 40000000H "KVMKVMKVM").
  [[nodiscard]] bool in_qemu_tcg() const;
  // "bare metal", "a QEMU TCG virtual machine (nested: ...)", "a virtual machine (...)".
  [[nodiscard]] std::string describe() const;
};

// Reads CPUID and `dmi_dir`/sys_vendor.
HostMachine detect_host_machine(const std::string& dmi_dir = "/sys/class/dmi/id");

// True when KVM maps guest memory with shadow page tables rather than EPT/NPT: PVM
// always, kvm_amd with npt=N, kvm_intel with ept=N.
bool kvm_shadow_mmu(const kvm::Flavour& flavour);

// The keys a deviation list names platforms by, for a KVM (`on_kvm`) or QEMU TCG
// backend on this machine: "tcg" (QEMU TCG walks the guest's page tables: the QEMU
// backend, or KVM with nested paging inside QEMU TCG); "kvm", the flavour ("kvm_amd",
// "kvm_intel", "pvm"), "kvm-shadow-mmu" and "tcg-under-kvm" (KVM itself running on
// QEMU TCG). Detected once per process.
const std::vector<std::string>& platform_keys(bool on_kvm);

bool has_platform_key(bool on_kvm, std::string_view key);

}  // namespace pagelab::lab

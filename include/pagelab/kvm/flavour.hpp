#pragma once
// Which KVM implementation backs /dev/kvm (kvm_intel, kvm_amd, kvm_pvm), read from
// sysfs so results can name the platform they were measured on.
#include <map>
#include <string>
#include <vector>

namespace pagelab::kvm {

struct Flavour {
  // "kvm_intel", "kvm_amd", "kvm_pvm", or "unknown" when no vendor module is loaded
  // (e.g. KVM built in, or not Linux sysfs).
  std::string name = "unknown";
  // KVM modules present, in the order kvm, kvm_intel, kvm_amd, kvm_pvm.
  std::vector<std::string> modules;
  // Paging-relevant module parameters that exist and are readable, keyed
  // "<module>.<parameter>" (e.g. "kvm.tdp_mmu" -> "N", "kvm_intel.ept" -> "Y").
  std::map<std::string, std::string> parameters;
};

Flavour detect_flavour(const std::string& sys_module_dir = "/sys/module");

// "kvm_pvm (kvm, kvm_pvm; kvm.tdp_mmu=N)".
std::string describe(const Flavour& flavour);

}  // namespace pagelab::kvm

#include "pagelab/lab/platform/host_machine.hpp"

#include <cpuid.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>

namespace pagelab::lab {

namespace {

constexpr unsigned kHypervisorBit = 31;  // CPUID.01H:ECX
constexpr unsigned kHypervisorLeaf = 0x40000000;

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == ' ' || line.back() == '\n')) line.pop_back();
  return line;
}

std::string parameter(const kvm::Flavour& f, const std::string& key) {
  const auto it = f.parameters.find(key);
  return it == f.parameters.end() ? "" : it->second;
}

}  // namespace

bool HostMachine::in_qemu() const {
  return hypervisor_bit && dmi_vendor.starts_with("QEMU");
}

bool HostMachine::in_qemu_tcg() const {
  return in_qemu() && !hypervisor_signature.starts_with("KVMKVMKVM");
}

std::string HostMachine::describe() const {
  if (!hypervisor_bit) return "bare metal (CPUID hypervisor bit clear)";
  const auto why = fmt::format("CPUID hypervisor bit, signature \"{}\", DMI vendor \"{}\"",
                               hypervisor_signature, dmi_vendor);
  if (in_qemu_tcg()) {
    return fmt::format(
        "a QEMU TCG virtual machine ({}): KVM runs nested on QEMU's software CPU, so TCG's "
        "departures show through it",
        why);
  }
  return fmt::format("a virtual machine ({})", why);
}

HostMachine detect_host_machine(const std::string& dmi_dir) {
  HostMachine h;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &c, &d) != 0) h.hypervisor_bit = ((c >> kHypervisorBit) & 1) != 0;
  if (h.hypervisor_bit) {
    // Leaf 40000000H exists only under a hypervisor; outside one it echoes another leaf.
    __cpuid(kHypervisorLeaf, a, b, c, d);
    std::array<char, 13> sig{};
    std::memcpy(sig.data(), &b, 4);
    std::memcpy(sig.data() + 4, &c, 4);
    std::memcpy(sig.data() + 8, &d, 4);
    h.hypervisor_signature = sig.data();
    h.hypervisor_signature.erase(
        std::remove_if(h.hypervisor_signature.begin(), h.hypervisor_signature.end(),
                       [](char ch) { return ch < 0x20 || ch > 0x7e; }),
        h.hypervisor_signature.end());
  }
  h.dmi_vendor = read_line(dmi_dir + "/sys_vendor");
  return h;
}

bool kvm_shadow_mmu(const kvm::Flavour& flavour) {
  if (flavour.name == "kvm_pvm") return true;
  if (flavour.name == "kvm_amd") return parameter(flavour, "kvm_amd.npt") == "N";
  if (flavour.name == "kvm_intel") return parameter(flavour, "kvm_intel.ept") == "N";
  return false;
}

const std::vector<std::string>& platform_keys(bool on_kvm) {
  static const std::vector<std::string> tcg{"tcg"};
  static const std::vector<std::string> kvm_keys = [] {
    const auto flavour = kvm::detect_flavour();
    std::vector<std::string> keys{"kvm"};
    keys.push_back(flavour.name == "kvm_pvm" ? "pvm" : flavour.name);
    if (kvm_shadow_mmu(flavour)) keys.emplace_back("kvm-shadow-mmu");
    if (detect_host_machine().in_qemu_tcg()) {
      keys.emplace_back("tcg-under-kvm");
      // With nested paging the guest's page walks are QEMU TCG's own: its access
      // deviations apply as on the QEMU backend.
      if (!kvm_shadow_mmu(flavour)) keys.emplace_back("tcg");
    }
    return keys;
  }();
  return on_kvm ? kvm_keys : tcg;
}

bool has_platform_key(bool on_kvm, std::string_view key) {
  const auto& keys = platform_keys(on_kvm);
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

}  // namespace pagelab::lab

#include "pagelab/lab/machine/cpu_features.hpp"

#include <cstring>

namespace pagelab::lab {

namespace {

const kvm_cpuid_entry2* find(const std::vector<kvm_cpuid_entry2>& entries, std::uint32_t leaf,
                             std::uint32_t subleaf) {
  for (const auto& e : entries) {
    if (e.function != leaf) continue;
    const bool indexed = (e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) != 0;
    if (!indexed || e.index == subleaf) return &e;
  }
  return nullptr;
}

std::uint32_t reg_of(const kvm_cpuid_entry2& e, CpuidRegister r) {
  switch (r) {
    case CpuidRegister::Eax:
      return e.eax;
    case CpuidRegister::Ebx:
      return e.ebx;
    case CpuidRegister::Ecx:
      return e.ecx;
    case CpuidRegister::Edx:
      return e.edx;
  }
  return 0;
}

}  // namespace

const std::vector<CpuidBit>& reported_cpuid_bits() {
  static const std::vector<CpuidBit> bits{cpuid::Pse,   cpuid::Pae,     cpuid::Pge,  cpuid::Pat,
                                          cpuid::Pse36, cpuid::Nx,      cpuid::Lm,   cpuid::Page1G,
                                          cpuid::Pcid,  cpuid::Invpcid, cpuid::Smep, cpuid::Smap,
                                          cpuid::Pku,   cpuid::La57,    cpuid::Umip};
  return bits;
}

bool PlatformCpu::has(const CpuidBit& b) const {
  const auto* e = find(entries, b.leaf, b.subleaf);
  return e != nullptr && ((reg_of(*e, b.reg) >> b.bit) & 1U) != 0;
}

unsigned PlatformCpu::maxphyaddr() const {
  const auto* e = find(entries, cpuid::AddressSizesLeaf, 0);
  return e != nullptr ? (e->eax & 0xffU) : 36U;
}

unsigned PlatformCpu::linear_bits() const {
  const auto* e = find(entries, cpuid::AddressSizesLeaf, 0);
  return e != nullptr ? ((e->eax >> 8) & 0xffU) : 32U;
}

std::string PlatformCpu::vendor() const {
  const auto* e = find(entries, 0, 0);
  if (e == nullptr) return "unknown";
  char name[13] = {};
  std::memcpy(name, &e->ebx, 4);
  std::memcpy(name + 4, &e->edx, 4);
  std::memcpy(name + 8, &e->ecx, 4);
  return name;
}

paging::CpuFeatures PlatformCpu::paging_features() const {
  paging::CpuFeatures f;
  f.maxphyaddr = maxphyaddr();
  f.linear_bits = linear_bits();
  f.pse = has(cpuid::Pse);
  f.pse36 = has(cpuid::Pse36);
  f.pae = has(cpuid::Pae);
  f.pge = has(cpuid::Pge);
  f.nx = has(cpuid::Nx);
  f.page1g = has(cpuid::Page1G);
  f.pcid = has(cpuid::Pcid);
  f.smep = has(cpuid::Smep);
  f.smap = has(cpuid::Smap);
  f.pku = has(cpuid::Pku);
  f.la57 = has(cpuid::La57);
  const auto v = vendor();
  f.amd = v == "AuthenticAMD" || v == "HygonGenuine";
  return f;
}

}  // namespace pagelab::lab

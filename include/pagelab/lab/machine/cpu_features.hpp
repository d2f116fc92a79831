#pragma once
// The paging-relevant CPUID bits (SDM vol. 2A, CPUID; AMD APM vol. 3 appendix E),
// decoded from the CPUID table the platform offers the guest.
#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "pagelab/paging/cpu_state.hpp"

namespace pagelab::lab {

// Where each feature lives: leaf, output register, bit.
enum class CpuidRegister { Eax, Ebx, Ecx, Edx };
struct CpuidBit {
  std::string_view name;
  std::uint32_t leaf;
  std::uint32_t subleaf;
  CpuidRegister reg;
  unsigned bit;
};

namespace cpuid {
inline constexpr CpuidBit Pse{"PSE", 1, 0, CpuidRegister::Edx, 3};
inline constexpr CpuidBit Pae{"PAE", 1, 0, CpuidRegister::Edx, 6};
inline constexpr CpuidBit Pge{"PGE", 1, 0, CpuidRegister::Edx, 13};
inline constexpr CpuidBit Pat{"PAT", 1, 0, CpuidRegister::Edx, 16};
inline constexpr CpuidBit Pse36{"PSE-36", 1, 0, CpuidRegister::Edx, 17};
inline constexpr CpuidBit Pcid{"PCID", 1, 0, CpuidRegister::Ecx, 17};
inline constexpr CpuidBit Smep{"SMEP", 7, 0, CpuidRegister::Ebx, 7};
inline constexpr CpuidBit Invpcid{"INVPCID", 7, 0, CpuidRegister::Ebx, 10};
inline constexpr CpuidBit Smap{"SMAP", 7, 0, CpuidRegister::Ebx, 20};
inline constexpr CpuidBit Umip{"UMIP", 7, 0, CpuidRegister::Ecx, 2};
inline constexpr CpuidBit Pku{"PKU", 7, 0, CpuidRegister::Ecx, 3};
inline constexpr CpuidBit La57{"LA57", 7, 0, CpuidRegister::Ecx, 16};
inline constexpr CpuidBit Nx{"NX", 0x8000'0001, 0, CpuidRegister::Edx, 20};
inline constexpr CpuidBit Page1G{"1GB-pages", 0x8000'0001, 0, CpuidRegister::Edx, 26};
inline constexpr CpuidBit Lm{"LM", 0x8000'0001, 0, CpuidRegister::Edx, 29};
inline constexpr std::uint32_t AddressSizesLeaf = 0x8000'0008;  // EAX[7:0] phys, [15:8] linear
}  // namespace cpuid

// Every feature pagelab reports, in display order.
const std::vector<CpuidBit>& reported_cpuid_bits();

struct PlatformCpu {
  std::vector<kvm_cpuid_entry2> entries;
  [[nodiscard]] bool has(const CpuidBit& bit) const;
  [[nodiscard]] unsigned maxphyaddr() const;   // 36 when leaf 0x80000008 is absent
  [[nodiscard]] unsigned linear_bits() const;  // 32 when leaf 0x80000008 is absent
  [[nodiscard]] std::string vendor() const;    // "GenuineIntel", "AuthenticAMD", ...
  // The features the paging model needs to judge an access on this CPU.
  [[nodiscard]] paging::CpuFeatures paging_features() const;
};

}  // namespace pagelab::lab

#pragma once
// The C layouts of the KVM structs that end in a flexible array, for use from C++.
//
// linux-libc-dev (6.1) declares those arrays with __DECLARE_FLEX_ARRAY, which wraps
// them in a struct holding an empty struct. An empty struct has size 0 in C but 1
// in C++, so in C++ sizeof(kvm_cpuid2) is 12 instead of 8, sizeof(kvm_msrs) 16
// instead of 8, and the array starts later. Both the ioctl request numbers (they
// encode sizeof) and the entry offsets come out wrong: KVM_GET_SUPPORTED_CPUID,
// KVM_GET_MSRS and friends fail with EINVAL. So the kvm layer never uses those
// macros from C++; it uses these headers and request numbers instead.
#include <linux/kvm.h>

#include <cstdint>

namespace pagelab::kvm::abi {

// struct kvm_cpuid2 without its array: entries follow at offset 8.
struct Cpuid2Header {
  std::uint32_t nent;
  std::uint32_t padding;
};
// struct kvm_msrs without its array: entries follow at offset 8.
struct MsrsHeader {
  std::uint32_t nmsrs;
  std::uint32_t pad;
};
// struct kvm_msr_list without its array: indices follow at offset 4.
struct MsrListHeader {
  std::uint32_t nmsrs;
};

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, Cpuid2Header);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, Cpuid2Header);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);

}  // namespace pagelab::kvm::abi

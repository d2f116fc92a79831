#include "pagelab/kvm/flex_array_abi.hpp"

#include <gtest/gtest.h>

namespace pagelab::kvm {
namespace {

// The request numbers as the kernel ABI defines them: _IOWR/_IOW over the C structs,
// whose fixed part is 8 bytes (kvm_cpuid2, kvm_msrs) or 4 bytes (kvm_msr_list).
// Direction bits 31:30, size 29:16, type 0xAE, number 7:0 (asm-generic/ioctl.h).
TEST(FlexArrayAbi, RequestNumbersMatchTheCLayout) {
  EXPECT_EQ(abi::kGetSupportedCpuid, 0xc008ae05ul);
  EXPECT_EQ(abi::kSetCpuid2, 0x4008ae90ul);
  EXPECT_EQ(abi::kGetMsrs, 0xc008ae88ul);
  EXPECT_EQ(abi::kSetMsrs, 0x4008ae89ul);
  EXPECT_EQ(abi::kGetMsrIndexList, 0xc004ae02ul);
}

}  // namespace
}  // namespace pagelab::kvm

#include "pagelab/kvm/system.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "test_vm.hpp"

namespace pagelab::kvm {
namespace {

TEST(System, UnavailableReasonForMissingDevice) {
  const auto why = System::unavailable_reason("/nonexistent/kvm");
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "/nonexistent/kvm does not exist");
}

TEST(System, UnavailableReasonForSomethingThatIsNotKvm) {
  // /dev/null opens fine but does not answer KVM_GET_API_VERSION.
  const auto why = System::unavailable_reason("/dev/null");
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("/dev/null"), std::string::npos) << *why;
}

TEST(System, ReportsApiVersion12) {
  PAGELAB_REQUIRE_KVM();
  const System system = System::open();
  // KVM_GET_API_VERSION "should always be 12" (Documentation/virt/kvm/api.rst).
  EXPECT_EQ(system.api_version(), 12);
}

TEST(System, CapabilitiesEveryX86KvmHas) {
  PAGELAB_REQUIRE_KVM();
  const System system = System::open();
  // Basic capabilities KVM has reported since 2.6.x; a value of 0 would mean absent.
  EXPECT_GT(system.check_extension(KVM_CAP_USER_MEMORY), 0);
  EXPECT_GT(system.check_extension(KVM_CAP_EXT_CPUID), 0);
  EXPECT_GE(system.vcpu_mmap_size(), sizeof(kvm_run));
}

TEST(System, SupportedCpuidHasTheBasicAndExtendedLeaves) {
  PAGELAB_REQUIRE_KVM();
  const System system = System::open();
  const auto cpuid = system.supported_cpuid();
  const auto has_leaf = [&](std::uint32_t leaf) {
    return std::any_of(cpuid.begin(), cpuid.end(),
                       [&](const kvm_cpuid_entry2& e) { return e.function == leaf; });
  };
  EXPECT_TRUE(has_leaf(0x0));
  EXPECT_TRUE(has_leaf(0x1));
  EXPECT_TRUE(has_leaf(0x8000'0000));
}

TEST(System, MsrIndexListContainsSysenterCs) {
  PAGELAB_REQUIRE_KVM();
  const System system = System::open();
  const auto msrs = system.msr_index_list();
  // IA32_SYSENTER_CS (0x174) heads KVM's msrs_to_save_base (arch/x86/kvm/x86.c) on
  // every x86 KVM; EFER is not listed (it travels in KVM_SET_SREGS).
  constexpr std::uint32_t kIa32SysenterCs = 0x174;
  EXPECT_NE(std::find(msrs.begin(), msrs.end(), kIa32SysenterCs), msrs.end());
}

}  // namespace
}  // namespace pagelab::kvm

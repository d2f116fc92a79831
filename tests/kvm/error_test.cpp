#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "pagelab/kvm/error.hpp"
#include "test_vm.hpp"

namespace pagelab::kvm {
namespace {

TEST(KvmError, MessageNamesTheIoctlAndTheErrno) {
  const KvmError error("KVM_CREATE_VM", EBUSY);
  EXPECT_STREQ(error.what(), "KVM_CREATE_VM: Device or resource busy (errno 16)");
  EXPECT_EQ(error.operation(), "KVM_CREATE_VM");
  EXPECT_EQ(error.error_number(), EBUSY);
}

TEST(KvmError, DetailFollowsTheErrno) {
  const KvmError error("KVM_SET_USER_MEMORY_REGION", EINVAL, "slot 0");
  EXPECT_STREQ(error.what(), "KVM_SET_USER_MEMORY_REGION: Invalid argument (errno 22): slot 0");
}

TEST(KvmError, WithoutErrnoOnlyTheDetailIsShown) {
  const KvmError error("KVM_GET_MSRS", 0, "MSR 0x1 is not readable here");
  EXPECT_STREQ(error.what(), "KVM_GET_MSRS: MSR 0x1 is not readable here");
}

TEST(KvmError, MisalignedSlotSizeIsEinvalNamingTheIoctl) {
  PAGELAB_REQUIRE_KVM();
  System system = System::open();
  Vm vm = system.create_vm();
  // KVM requires memory_size to be a multiple of the page size (api.rst,
  // KVM_SET_USER_MEMORY_REGION).
  GuestMemory odd(paging::GuestPhys{0}, 0x1001);
  try {
    vm.set_memory(0, odd);
    FAIL() << "a slot of 0x1001 bytes was accepted";
  } catch (const KvmError& error) {
    EXPECT_EQ(error.operation(), "KVM_SET_USER_MEMORY_REGION");
    EXPECT_EQ(error.error_number(), EINVAL);
    EXPECT_NE(std::string(error.what()).find("KVM_SET_USER_MEMORY_REGION: Invalid argument"),
              std::string::npos)
        << error.what();
  }
}

TEST(KvmError, OpeningAMissingDeviceNamesThePath) {
  EXPECT_THROW(
      {
        try {
          (void)System::open("/nonexistent/kvm");
        } catch (const KvmError& error) {
          EXPECT_EQ(error.error_number(), ENOENT);
          EXPECT_NE(std::string(error.what()).find("/nonexistent/kvm"), std::string::npos);
          throw;
        }
      },
      KvmError);
}

}  // namespace
}  // namespace pagelab::kvm

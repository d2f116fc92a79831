#include <gtest/gtest.h>
#include <linux/kvm.h>

#include "pagelab/kvm/exit.hpp"

namespace pagelab::kvm {
namespace {

using namespace std::chrono_literals;

TEST(ExitReasonName, KnownAndUnknownNumbers) {
  EXPECT_EQ(exit_reason_name(KVM_EXIT_HLT), "KVM_EXIT_HLT");
  EXPECT_EQ(exit_reason_name(KVM_EXIT_SHUTDOWN), "KVM_EXIT_SHUTDOWN");
  EXPECT_EQ(exit_reason_name(KVM_EXIT_INTERNAL_ERROR), "KVM_EXIT_INTERNAL_ERROR");
  EXPECT_EQ(exit_reason_name(KVM_EXIT_NOTIFY), "KVM_EXIT_NOTIFY");
  EXPECT_EQ(exit_reason_name(999), "KVM_EXIT_999");
}

TEST(DescribeExit, IoOut) {
  EXPECT_EQ(describe(IoExit{true, 0xe9, 1, 1, {0x00}}), "I/O out port 0xe9 size 1: 0x00");
  // Two-byte elements are shown as the little-endian value the guest wrote.
  EXPECT_EQ(describe(IoExit{true, 0x80, 2, 2, {0x34, 0x12, 0xcd, 0xab}}),
            "I/O out port 0x80 size 2 count 2: 0x1234 0xabcd");
}

TEST(DescribeExit, IoInHasNoData) {
  EXPECT_EQ(describe(IoExit{false, 0x60, 1, 1, {0}}), "I/O in port 0x60 size 1");
}

TEST(DescribeExit, Mmio) {
  MmioExit write{0xfee00000, true, 4, {0x78, 0x56, 0x34, 0x12}};
  EXPECT_EQ(describe(write), "MMIO write 0xfee00000 length 4: 78 56 34 12");
  EXPECT_EQ(describe(MmioExit{0x20010, false, 1, {}}), "MMIO read 0x20010 length 1");
}

TEST(DescribeExit, AbnormalStops) {
  EXPECT_EQ(describe(ShutdownExit{}), "KVM_EXIT_SHUTDOWN (triple fault)");
  EXPECT_EQ(describe(InternalErrorExit{KVM_INTERNAL_ERROR_EMULATION, {}, {}}),
            "KVM_EXIT_INTERNAL_ERROR suberror 1 (emulation failure)");
  EXPECT_EQ(describe(InternalErrorExit{KVM_INTERNAL_ERROR_EMULATION, {}, {0xcc}}),
            "KVM_EXIT_INTERNAL_ERROR suberror 1 (emulation failure); instruction bytes cc");
  EXPECT_EQ(describe(InternalErrorExit{KVM_INTERNAL_ERROR_DELIVERY_EV, {}, {}}),
            "KVM_EXIT_INTERNAL_ERROR suberror 3 (event delivery)");
  EXPECT_EQ(describe(FailEntryExit{0x80000021, 1}),
            "KVM_EXIT_FAIL_ENTRY hardware reason 0x80000021 on cpu 1");
  EXPECT_EQ(describe(HangExit{2000ms}), "hang: no exit within 2000 ms");
  EXPECT_EQ(describe(OtherExit{KVM_EXIT_DEBUG}), "KVM_EXIT_DEBUG (4)");
}

}  // namespace
}  // namespace pagelab::kvm

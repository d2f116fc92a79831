// Expected values come from the descriptor and selector layouts of SDM vol. 3
// figures 3-6 (selector), 3-8 (segment descriptor), 7-4 (64-bit TSS/LDT descriptor),
// 6-8 (64-bit IDT gate), 5-8 (call gate) and tables 3-1/3-2 (types).
#include <gtest/gtest.h>

#include <stdexcept>

#include "pagelab/paging/segment_descriptor.hpp"

namespace pagelab::paging {
namespace {

TEST(SegmentSelector, FieldsFollowFigure3_6) {
  // 0x1b = 0b11011: index 3, TI 0 (GDT), RPL 3 — the usual user data selector.
  const Selector s{0x1b};
  EXPECT_EQ(s.index(), 3u);
  EXPECT_FALSE(s.ti());
  EXPECT_EQ(s.rpl(), 3u);
  EXPECT_FALSE(s.is_null());
  // 0x0f = index 1, TI 1 (LDT), RPL 3.
  const Selector l{0x0f};
  EXPECT_EQ(l.index(), 1u);
  EXPECT_TRUE(l.ti());
  EXPECT_EQ(l.rpl(), 3u);
  // Top index: 0xfff8 = index 8191.
  EXPECT_EQ(Selector{0xfff8}.index(), 8191u);
}

TEST(SegmentSelector, NullIsIndexZeroInGdtWhateverTheRpl) {
  EXPECT_TRUE(Selector{0}.is_null());
  EXPECT_TRUE(Selector{3}.is_null());
  EXPECT_FALSE(Selector{4}.is_null());  // index 0 of the LDT is not the null selector
}

TEST(SegmentSelector, ErrorCodeDropsRplKeepsIndexAndTi) {
  // SDM 6.13: the error code holds the selector index and TI; bits 1:0 are IDT/EXT.
  EXPECT_EQ(Selector{0x1b}.error_code(), 0x18u);
  EXPECT_EQ(Selector{0x0f}.error_code(), 0x0cu);
}

TEST(SegmentSelector, MakeRoundTripsAndRejectsOversizedFields) {
  EXPECT_EQ(Selector::make(3, false, 3).raw, 0x1b);
  EXPECT_EQ(Selector::make(1, true, 3).raw, 0x0f);
  EXPECT_THROW(Selector::make(8192, false, 0), std::invalid_argument);
  EXPECT_THROW(Selector::make(1, false, 4), std::invalid_argument);
}

TEST(SegmentDescriptor, DesignFactFlat32BitUserCode) {
  // DESIGN.md: 0x00cffa000000ffff is base 0, limit 0xfffff with 4 KiB granularity
  // (4 GiB), DPL 3, present, code, readable, 32-bit.
  const Descriptor d = decode_descriptor(0x00cffa000000ffffULL);
  EXPECT_EQ(d.base, 0u);
  EXPECT_EQ(d.limit, 0xfffffu);
  EXPECT_TRUE(d.g);
  EXPECT_EQ(d.effective_limit(), 0xffffffffULL);
  EXPECT_EQ(d.dpl, 3u);
  EXPECT_TRUE(d.present);
  EXPECT_TRUE(d.s);
  EXPECT_TRUE(d.is_code());
  EXPECT_TRUE(d.readable());
  EXPECT_FALSE(d.writable());
  EXPECT_FALSE(d.conforming());
  EXPECT_FALSE(d.accessed());
  EXPECT_TRUE(d.db);
  EXPECT_FALSE(d.l);
  EXPECT_FALSE(d.avl);
  EXPECT_EQ(d.type_name(), "code, execute/read");
}

TEST(SegmentDescriptor, SplitBaseAndLimitFields) {
  // Base 0x12345678: bits 23:0 at descriptor bits 39:16, bits 31:24 at 63:56.
  // Limit 0xabcd (G=0): bits 15:0 at 15:0. Access byte 0x92: present DPL0 data RW.
  const Descriptor d = decode_descriptor(0x12009234'5678abcdULL);
  EXPECT_EQ(d.base, 0x12345678u);
  EXPECT_EQ(d.limit, 0xabcdu);
  EXPECT_FALSE(d.g);
  EXPECT_EQ(d.effective_limit(), 0xabcdu);
  EXPECT_TRUE(d.is_data());
  EXPECT_TRUE(d.writable());
  EXPECT_EQ(d.dpl, 0u);
}

TEST(SegmentDescriptor, GranularityScalesLimitBy4KiB) {
  // Limit 0x00001 with G=1: 1 * 4096 + 4095 = 0x1fff.
  const Descriptor d = decode_descriptor(0x00c09200'00000001ULL);
  EXPECT_EQ(d.limit, 1u);
  EXPECT_EQ(d.effective_limit(), 0x1fffu);
}

TEST(SegmentDescriptor, SixtyFourBitCodeHasLSetAndDClear) {
  const Descriptor d = decode_descriptor(0x00af9a000000ffffULL);
  EXPECT_TRUE(d.is_code());
  EXPECT_TRUE(d.l);
  EXPECT_FALSE(d.db);
  EXPECT_EQ(d.dpl, 0u);
}

TEST(SegmentDescriptor, DataTypeBits) {
  // Type 0x6 = data, read/write, expand-down (table 3-1); 0x1 = read-only, accessed.
  const Descriptor down = decode_descriptor(0x00409600'0000ffffULL);
  EXPECT_TRUE(down.expand_down());
  EXPECT_TRUE(down.writable());
  EXPECT_EQ(down.type_name(), "data, read/write, expand-down");
  const Descriptor ro = decode_descriptor(0x00409100'0000ffffULL);
  EXPECT_FALSE(ro.writable());
  EXPECT_TRUE(ro.readable());
  EXPECT_TRUE(ro.accessed());
}

TEST(SegmentDescriptor, CodeTypeBits) {
  // Type 0x8 = execute-only; 0xe = execute/read, conforming.
  const Descriptor xo = decode_descriptor(0x00cf9800'0000ffffULL);
  EXPECT_TRUE(xo.is_code());
  EXPECT_FALSE(xo.readable());
  const Descriptor conf = decode_descriptor(0x00cf9e00'0000ffffULL);
  EXPECT_TRUE(conf.conforming());
  EXPECT_TRUE(conf.readable());
}

TEST(SegmentDescriptor, LegacySystemTypes) {
  // Table 3-2: 0x3 = 16-bit busy TSS, 0x2 = LDT, 0x9 = 32-bit available TSS.
  EXPECT_EQ(decode_descriptor(0x00008300'00000067ULL).system_kind(), SystemKind::TssBusy);
  EXPECT_EQ(decode_descriptor(0x00008300'00000067ULL).type_name(), "16-bit TSS (busy)");
  EXPECT_EQ(decode_descriptor(0x00008200'00000067ULL).system_kind(), SystemKind::Ldt);
  EXPECT_EQ(decode_descriptor(0x00008900'00000067ULL).type_name(), "32-bit TSS (available)");
  EXPECT_EQ(decode_descriptor(0x00008500'00000000ULL).system_kind(), SystemKind::TaskGate);
  EXPECT_EQ(decode_descriptor(0x00008800'00000000ULL).system_kind(), SystemKind::Reserved);
}

TEST(SegmentDescriptor, IA32eModeReservesSixteenBitSystemTypes) {
  // Table 3-2, IA-32e column: types 1, 3, 4, 5, 6, 7 are reserved.
  EXPECT_EQ(decode_descriptor(0x00008300'00000067ULL, true).system_kind(), SystemKind::Reserved);
  EXPECT_EQ(decode_descriptor(0x00008500'00000000ULL, true).system_kind(), SystemKind::Reserved);
  EXPECT_EQ(decode_descriptor(0x00008b00'00000067ULL, true).type_name(), "64-bit TSS (busy)");
}

TEST(SegmentDescriptor, SixteenByteTssTakesBase63To32FromHighQuadword) {
  // Base 0xffff888012345678, limit 0x67, type 9 (available), present, DPL 0.
  const std::uint64_t low = 0x12008934'56780067ULL;
  const std::uint64_t high = 0x00000000'ffff8880ULL;
  const Descriptor d = decode_descriptor16(low, high);
  EXPECT_EQ(d.base, 0xffff888012345678ULL);
  EXPECT_EQ(d.limit, 0x67u);
  EXPECT_EQ(d.system_kind(), SystemKind::TssAvailable);
  EXPECT_TRUE(d.is_16_bytes());
  EXPECT_EQ(d.type_name(), "64-bit TSS (available)");
  const auto both = encode_descriptor16(d);
  EXPECT_EQ(both[0], low);
  EXPECT_EQ(both[1], high);
}

TEST(SegmentDescriptor, HighQuadwordTypeFieldMustBeZero) {
  // Figure 7-4: bits 12:8 of the upper doubleword are 0.
  EXPECT_THROW(decode_descriptor16(0x12008934'56780067ULL, 0x00000100'ffff8880ULL),
               std::invalid_argument);
  // A code descriptor is not a 16-byte descriptor.
  EXPECT_THROW(decode_descriptor16(0x00af9a000000ffffULL, 0), std::invalid_argument);
}

TEST(SegmentDescriptor, SixtyFourBitInterruptGate) {
  // Figure 6-8: offset 15:0 in bits 15:0, selector 31:16, type 0xe, offset 31:16 in
  // 63:48, offset 63:32 in the high quadword.
  const Descriptor g = decode_descriptor16(0x81238e00'00104567ULL, 0x00000000'ffffffffULL);
  EXPECT_EQ(g.system_kind(), SystemKind::InterruptGate);
  EXPECT_EQ(g.gate_selector, 0x10);
  EXPECT_EQ(g.gate_offset, 0xffffffff81234567ULL);
  EXPECT_EQ(g.type_name(), "64-bit interrupt gate");
  const auto both = encode_descriptor16(g);
  EXPECT_EQ(both[0], 0x81238e00'00104567ULL);
  EXPECT_EQ(both[1], 0xffffffffULL);
}

TEST(SegmentDescriptor, LegacyCallGateParamCount) {
  // Figure 5-8: parameter count in bits 36:32. Type 0xc, DPL 3, present.
  const Descriptor g = decode_descriptor(0x0000ec02'00081000ULL);
  EXPECT_EQ(g.system_kind(), SystemKind::CallGate);
  EXPECT_EQ(g.gate_offset, 0x1000u);
  EXPECT_EQ(g.gate_selector, 0x08);
  EXPECT_EQ(g.gate_param_count, 2u);
  EXPECT_EQ(g.dpl, 3u);
  EXPECT_EQ(encode_descriptor(g), 0x0000ec02'00081000ULL);
}

TEST(SegmentDescriptor, EncodeRoundTripsDecode) {
  for (std::uint64_t raw : {0x00cffa000000ffffULL, 0x00af9a000000ffffULL, 0x12009234'5678abcdULL,
                            0x00409600'0000ffffULL, 0xff5ff300'ff00ffffULL}) {
    EXPECT_EQ(encode_descriptor(decode_descriptor(raw)), raw) << std::hex << raw;
  }
}

TEST(SegmentDescriptor, FlatDescriptorsMatchTheWellKnownGdtValues) {
  EXPECT_EQ(encode_descriptor(flat_code_descriptor(3, false, true)), 0x00cffa000000ffffULL);
  EXPECT_EQ(encode_descriptor(flat_code_descriptor(0, true, false)), 0x00af9a000000ffffULL);
  EXPECT_EQ(encode_descriptor(flat_code_descriptor(0, false, true)), 0x00cf9a000000ffffULL);
  EXPECT_EQ(encode_descriptor(flat_data_descriptor(0)), 0x00cf92000000ffffULL);
  EXPECT_EQ(encode_descriptor(flat_data_descriptor(3)), 0x00cff2000000ffffULL);
}

TEST(SegmentDescriptor, EncodeRejectsFieldsThatDoNotFit) {
  Descriptor d = flat_data_descriptor(0);
  d.limit = 0x100000;
  EXPECT_THROW(encode_descriptor(d), std::invalid_argument);
  d = flat_data_descriptor(0);
  d.dpl = 4;
  EXPECT_THROW(encode_descriptor(d), std::invalid_argument);
  d = flat_data_descriptor(0);
  d.base = 0x1'0000'0000ULL;
  EXPECT_THROW(encode_descriptor(d), std::invalid_argument);
}

}  // namespace
}  // namespace pagelab::paging

// Expected outcomes follow SDM vol. 3 §5.3 (limit checking, expand-down bounds), §5.4.1
// (type checking), §3.4.2 (null selectors), §3.3.7.1 (canonical addresses in 64-bit
// mode), §6.15 (#SS for stack references) and the MOV / JMP operation sections of
// SDM vol. 2 (selector-load checks).
#include <gtest/gtest.h>

#include <stdexcept>

#include "pagelab/paging/segment_check.hpp"

namespace pagelab::paging {
namespace {

SegmentRegister reg(SegmentRegisterName name, const Descriptor& d, std::uint16_t sel = 0x10) {
  return SegmentRegister{name, Selector{sel}, d};
}

Descriptor small_data(std::uint32_t limit, unsigned type, bool g = false, bool b = true) {
  Descriptor d = flat_data_descriptor(0);
  d.limit = limit;
  d.g = g;
  d.db = b;
  d.type = type;
  return d;
}

std::uint64_t linear_of(const std::variant<Linear, SegmentFault>& r) {
  EXPECT_TRUE(std::holds_alternative<Linear>(r))
      << (std::holds_alternative<SegmentFault>(r) ? std::get<SegmentFault>(r).reason : "");
  return std::holds_alternative<Linear>(r) ? std::get<Linear>(r).value() : ~0ULL;
}

SegmentFault fault_of(const std::variant<Linear, SegmentFault>& r) {
  EXPECT_TRUE(std::holds_alternative<SegmentFault>(r));
  return std::holds_alternative<SegmentFault>(r) ? std::get<SegmentFault>(r) : SegmentFault{};
}

constexpr auto kDs = SegmentRegisterName::Ds;
constexpr auto kSs = SegmentRegisterName::Ss;
constexpr auto kCs = SegmentRegisterName::Cs;
constexpr auto kFs = SegmentRegisterName::Fs;
constexpr unsigned kRw = SegmentType::Writable;

TEST(LogicalToLinear, LinearIsBasePlusOffset) {
  Descriptor d = flat_data_descriptor(0);
  d.base = 0x10000;
  EXPECT_EQ(linear_of(logical_to_linear(reg(kDs, d), 0x1234, 4, AccessKind::Read, 0, false)),
            0x11234u);
}

TEST(LogicalToLinear, ThirtyTwoBitLinearAddressesWrap) {
  Descriptor d = flat_data_descriptor(0);
  d.base = 0x1000;
  EXPECT_EQ(linear_of(logical_to_linear(reg(kDs, d), 0xfffff000, 1, AccessKind::Read, 0, false)),
            0u);
}

TEST(LogicalToLinear, ExpandUpLimitIsLastValidByte) {
  const auto ds = reg(kDs, small_data(0xfff, kRw));
  EXPECT_EQ(linear_of(logical_to_linear(ds, 0xffe, 2, AccessKind::Read, 0, false)), 0xffeu);
  const auto f = fault_of(logical_to_linear(ds, 0xfff, 2, AccessKind::Read, 0, false));
  EXPECT_EQ(f.vector, 13u);
  EXPECT_EQ(f.error_code, 0u);
}

TEST(LogicalToLinear, StackLimitViolationIsSsNotGp) {
  const auto ss = reg(kSs, small_data(0xfff, kRw));
  EXPECT_EQ(fault_of(logical_to_linear(ss, 0x1000, 4, AccessKind::Write, 0, false)).vector, 12u);
}

TEST(LogicalToLinear, GranularLimitCoversLastPage) {
  const auto ds = reg(kDs, small_data(0, kRw, /*g=*/true));
  EXPECT_EQ(linear_of(logical_to_linear(ds, 0xfff, 1, AccessKind::Read, 0, false)), 0xfffu);
  EXPECT_EQ(fault_of(logical_to_linear(ds, 0x1000, 1, AccessKind::Read, 0, false)).vector, 13u);
}

TEST(LogicalToLinear, ExpandDownSixteenBitAllowsLimitPlusOneTo0xffff) {
  const auto ds = reg(kDs, small_data(0xfff, kRw | SegmentType::ExpandDown, false, /*b=*/false));
  EXPECT_EQ(linear_of(logical_to_linear(ds, 0x1000, 1, AccessKind::Read, 0, false)), 0x1000u);
  EXPECT_EQ(linear_of(logical_to_linear(ds, 0xfffe, 2, AccessKind::Read, 0, false)), 0xfffeu);
  EXPECT_EQ(fault_of(logical_to_linear(ds, 0xfff, 1, AccessKind::Read, 0, false)).vector, 13u);
  EXPECT_EQ(fault_of(logical_to_linear(ds, 0xffff, 2, AccessKind::Read, 0, false)).vector, 13u);
}

TEST(LogicalToLinear, ExpandDownBigSegmentReaches4GiB) {
  const auto ss = reg(kSs, small_data(0xfff, kRw | SegmentType::ExpandDown, false, /*b=*/true));
  EXPECT_EQ(linear_of(logical_to_linear(ss, 0xffff, 2, AccessKind::Write, 0, false)), 0xffffu);
  EXPECT_EQ(linear_of(logical_to_linear(ss, 0xfffffffc, 4, AccessKind::Write, 0, false)),
            0xfffffffcu);
  EXPECT_EQ(fault_of(logical_to_linear(ss, 0xfffffffe, 4, AccessKind::Write, 0, false)).vector,
            12u);
  EXPECT_EQ(fault_of(logical_to_linear(ss, 0x800, 4, AccessKind::Write, 0, false)).vector, 12u);
}

TEST(LogicalToLinear, WriteToCodeSegmentIsGp) {
  const auto cs = reg(kDs, flat_code_descriptor(0, false, true));
  EXPECT_EQ(fault_of(logical_to_linear(cs, 0, 4, AccessKind::Write, 0, false)).vector, 13u);
}

TEST(LogicalToLinear, WriteToReadOnlyDataIsGp) {
  const auto ds = reg(kDs, small_data(0xfffff, 0, true));
  EXPECT_EQ(fault_of(logical_to_linear(ds, 0, 4, AccessKind::Write, 0, false)).vector, 13u);
  EXPECT_EQ(linear_of(logical_to_linear(ds, 0, 4, AccessKind::Read, 0, false)), 0u);
}

TEST(LogicalToLinear, ReadOfExecuteOnlyCodeIsGpButFetchIsFine) {
  Descriptor xo = flat_code_descriptor(0, false, true);
  xo.type = SegmentType::Code;
  EXPECT_EQ(fault_of(logical_to_linear(reg(kCs, xo), 0x100, 4, AccessKind::Read, 0, false)).vector,
            13u);
  EXPECT_EQ(linear_of(logical_to_linear(reg(kCs, xo), 0x100, 4, AccessKind::Execute, 0, false)),
            0x100u);
  // Readable code may be read.
  EXPECT_EQ(linear_of(logical_to_linear(reg(kDs, flat_code_descriptor(0, false, true)), 0x100, 4,
                                        AccessKind::Read, 0, false)),
            0x100u);
}

TEST(LogicalToLinear, FetchFromDataSegmentIsGp) {
  EXPECT_EQ(fault_of(logical_to_linear(reg(kCs, flat_data_descriptor(0)), 0, 1, AccessKind::Execute,
                                       0, false))
                .vector,
            13u);
}

TEST(LogicalToLinear, NullLoadedRegisterIsUnusable) {
  // SDM 3.4.2: a null selector in DS..GS faults on use with #GP(0); the cached entry of
  // the null descriptor is not present.
  const SegmentRegister ds{kDs, Selector{0}, decode_descriptor(0)};
  const auto f = fault_of(logical_to_linear(ds, 0, 1, AccessKind::Read, 0, false));
  EXPECT_EQ(f.vector, 13u);
  EXPECT_EQ(f.error_code, 0u);
}

TEST(LogicalToLinear, SixtyFourBitModeIgnoresBaseAndLimitOfDs) {
  Descriptor d = small_data(0, kRw);
  d.base = 0x5000;
  EXPECT_EQ(linear_of(logical_to_linear(reg(kDs, d), 0x12345678, 8, AccessKind::Write, 0, true)),
            0x12345678u);
}

TEST(LogicalToLinear, SixtyFourBitModeAppliesFsBase) {
  Descriptor d = flat_data_descriptor(0);
  d.base = 0x00007000'00000000ULL;  // from IA32_FS_BASE
  EXPECT_EQ(linear_of(logical_to_linear(reg(kFs, d), 0x10, 8, AccessKind::Read, 3, true)),
            0x00007000'00000010ULL);
}

TEST(LogicalToLinear, NonCanonicalIsGpOrSsInSixtyFourBitMode) {
  const Descriptor d = flat_data_descriptor(0);
  const auto gp = fault_of(
      logical_to_linear(reg(kDs, d), 0x00008000'00000000ULL, 1, AccessKind::Read, 0, true));
  EXPECT_EQ(gp.vector, 13u);
  EXPECT_EQ(gp.error_code, 0u);
  EXPECT_EQ(fault_of(logical_to_linear(reg(kSs, d), 0x00008000'00000000ULL, 8, AccessKind::Write, 0,
                                       true))
                .vector,
            12u);
  // The last byte counts too: 0x7ffffffffffe + 3 crosses into non-canonical space.
  EXPECT_EQ(
      fault_of(logical_to_linear(reg(kDs, d), 0x00007fff'fffffffeULL, 4, AccessKind::Read, 0, true))
          .vector,
      13u);
  // The upper canonical half is fine.
  EXPECT_EQ(linear_of(logical_to_linear(reg(kDs, d), 0xffff8000'00000000ULL, 8, AccessKind::Read, 0,
                                        true)),
            0xffff8000'00000000ULL);
}

TEST(LogicalToLinear, FiftySevenBitCanonicalWithLa57) {
  const Descriptor d = flat_data_descriptor(0);
  EXPECT_EQ(linear_of(logical_to_linear(reg(kDs, d), 0x00008000'00000000ULL, 1, AccessKind::Read, 0,
                                        true, 57)),
            0x00008000'00000000ULL);
  EXPECT_EQ(fault_of(logical_to_linear(reg(kDs, d), 0x01000000'00000000ULL, 1, AccessKind::Read, 0,
                                       true, 57))
                .vector,
            13u);
}

TEST(LogicalToLinear, ZeroSizeIsAProgrammingError) {
  EXPECT_THROW(
      logical_to_linear(reg(kDs, flat_data_descriptor(0)), 0, 0, AccessKind::Read, 0, false),
      std::invalid_argument);
}

// --- selector loads ---

TEST(SegmentLoad, NullIntoSsIsGpZero) {
  const auto f = check_segment_load(Selector{0}, decode_descriptor(0), kSs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 13u);
  EXPECT_EQ(f->error_code, 0u);
}

TEST(SegmentLoad, NullSsAllowedIn64BitModeBelowCpl3WithRplEqualCpl) {
  EXPECT_FALSE(check_segment_load(Selector{0}, decode_descriptor(0), kSs, 0, true, true));
  EXPECT_TRUE(check_segment_load(Selector{3}, decode_descriptor(0), kSs, 3, true, true));
  EXPECT_TRUE(check_segment_load(Selector{1}, decode_descriptor(0), kSs, 0, true, true));
}

TEST(SegmentLoad, SsRplMustEqualCpl) {
  const auto f = check_segment_load(Selector{0x13}, flat_data_descriptor(0), kSs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 13u);
  EXPECT_EQ(f->error_code, 0x10u);
}

TEST(SegmentLoad, SsMustBeWritableData) {
  EXPECT_TRUE(check_segment_load(Selector{0x10}, small_data(0xfffff, 0), kSs, 0));
  EXPECT_TRUE(check_segment_load(Selector{0x10}, flat_code_descriptor(0, false, true), kSs, 0));
  EXPECT_FALSE(check_segment_load(Selector{0x10}, flat_data_descriptor(0), kSs, 0));
}

TEST(SegmentLoad, SsDplMustEqualCpl) {
  const auto f = check_segment_load(Selector{0x23}, flat_data_descriptor(0), kSs, 3);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error_code, 0x20u);
  EXPECT_FALSE(check_segment_load(Selector{0x23}, flat_data_descriptor(3), kSs, 3));
}

TEST(SegmentLoad, SsNotPresentIsSsFault) {
  Descriptor d = flat_data_descriptor(0);
  d.present = false;
  const auto f = check_segment_load(Selector{0x10}, d, kSs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 12u);
  EXPECT_EQ(f->error_code, 0x10u);
}

TEST(SegmentLoad, NullIntoDsIsAllowed) {
  EXPECT_FALSE(check_segment_load(Selector{0}, decode_descriptor(0), kDs, 3));
}

TEST(SegmentLoad, DataNeedsCplAndRplAtMostDpl) {
  EXPECT_TRUE(check_segment_load(Selector{0x13}, flat_data_descriptor(0), kDs, 3));  // CPL > DPL
  EXPECT_TRUE(check_segment_load(Selector{0x13}, flat_data_descriptor(0), kDs, 0));  // RPL > DPL
  EXPECT_FALSE(check_segment_load(Selector{0x10}, flat_data_descriptor(0), kDs, 0));
  EXPECT_FALSE(check_segment_load(Selector{0x13}, flat_data_descriptor(3), kDs, 0));
}

TEST(SegmentLoad, DsAcceptsReadableCodeButNotExecuteOnly) {
  Descriptor xo = flat_code_descriptor(0, false, true);
  xo.type = SegmentType::Code;
  EXPECT_TRUE(check_segment_load(Selector{0x08}, xo, kDs, 0));
  EXPECT_FALSE(check_segment_load(Selector{0x08}, flat_code_descriptor(0, false, true), kDs, 0));
}

TEST(SegmentLoad, ConformingReadableCodeSkipsPrivilegeCheckForDs) {
  Descriptor conf = flat_code_descriptor(0, false, true);
  conf.type |= SegmentType::Conforming;
  EXPECT_FALSE(check_segment_load(Selector{0x0b}, conf, kDs, 3));
  EXPECT_TRUE(check_segment_load(Selector{0x0b}, flat_code_descriptor(0, false, true), kDs, 3));
}

TEST(SegmentLoad, DsSystemDescriptorIsGp) {
  const auto f =
      check_segment_load(Selector{0x28}, decode_descriptor(0x00008200'00000067ULL), kDs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 13u);
  EXPECT_EQ(f->error_code, 0x28u);
}

TEST(SegmentLoad, DsNotPresentIsNp) {
  Descriptor d = flat_data_descriptor(0);
  d.present = false;
  const auto f = check_segment_load(Selector{0x10}, d, kFs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 11u);
  EXPECT_EQ(f->error_code, 0x10u);
}

TEST(SegmentLoad, FarJumpToNullIsGpZero) {
  const auto f = check_segment_load(Selector{0}, decode_descriptor(0), kCs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 13u);
  EXPECT_EQ(f->error_code, 0u);
}

TEST(SegmentLoad, FarJumpToDataIsGpSelector) {
  const auto f = check_segment_load(Selector{0x10}, flat_data_descriptor(0), kCs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->error_code, 0x10u);
}

TEST(SegmentLoad, NonConformingCodeNeedsDplEqualCplAndRplAtMostCpl) {
  EXPECT_FALSE(check_segment_load(Selector{0x08}, flat_code_descriptor(0, false, true), kCs, 0));
  EXPECT_TRUE(check_segment_load(Selector{0x08}, flat_code_descriptor(3, false, true), kCs, 0));
  EXPECT_TRUE(check_segment_load(Selector{0x0b}, flat_code_descriptor(0, false, true), kCs, 0));
  EXPECT_TRUE(check_segment_load(Selector{0x08}, flat_code_descriptor(0, false, true), kCs, 3));
}

TEST(SegmentLoad, ConformingCodeNeedsDplAtMostCpl) {
  Descriptor conf = flat_code_descriptor(0, false, true);
  conf.type |= SegmentType::Conforming;
  EXPECT_FALSE(check_segment_load(Selector{0x0b}, conf, kCs, 3));
  conf.dpl = 3;
  EXPECT_TRUE(check_segment_load(Selector{0x08}, conf, kCs, 0));
}

TEST(SegmentLoad, CodeNotPresentIsNp) {
  Descriptor d = flat_code_descriptor(0, false, true);
  d.present = false;
  const auto f = check_segment_load(Selector{0x08}, d, kCs, 0);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 11u);
}

TEST(SegmentLoad, LAndDBothSetIsGpOnlyInIa32eMode) {
  const Descriptor bad = flat_code_descriptor(0, true, true);
  const auto f = check_segment_load(Selector{0x08}, bad, kCs, 0, /*ia32e=*/true);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->vector, 13u);
  EXPECT_EQ(f->error_code, 0x08u);
  EXPECT_FALSE(check_segment_load(Selector{0x08}, bad, kCs, 0, /*ia32e=*/false));
}

TEST(SegmentLoad, FarJumpThroughGatesIsNotModelled) {
  const Descriptor gate = decode_descriptor(0x0000ec02'00081000ULL);
  EXPECT_THROW(check_segment_load(Selector{0x30}, gate, kCs, 0), std::invalid_argument);
  // An LDT descriptor is never a far-jump target.
  EXPECT_TRUE(
      check_segment_load(Selector{0x28}, decode_descriptor(0x00008200'00000067ULL), kCs, 0));
}

}  // namespace
}  // namespace pagelab::paging

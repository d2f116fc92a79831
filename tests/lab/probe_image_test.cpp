// The embedded probe: header, size, and a GDT whose descriptors mean what the probe's
// mode switches need (decoded by the paging model's segment decoder).
#include <gtest/gtest.h>

#include <cstring>

#include "pagelab/lab/machine/probe_image.hpp"
#include "pagelab/paging/segment_descriptor.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::test {
namespace {

std::uint64_t gdt_entry(const lab::ProbeImage& img, unsigned selector) {
  std::uint64_t v = 0;
  const auto off = img.gdt.value() - PROBE_LOAD_GPA + selector;
  std::memcpy(&v, img.bytes.data() + off, sizeof v);
  return v;
}

TEST(ProbeImage, FitsBelow64KiBWithItsHeader) {
  const auto& img = lab::probe_image();
  EXPECT_LE(img.bytes.size(), std::size_t{PROBE_MAX_SIZE});
  EXPECT_EQ(img.gdt_size, PROBE_GDT_ENTRIES * 8u);
}

TEST(ProbeImage, GdtDescriptorsDecodeAsTheModesNeedThem) {
  const auto& img = lab::probe_image();
  const auto code32 = paging::decode_descriptor(gdt_entry(img, PROBE_SEL_CODE32));
  EXPECT_TRUE(code32.is_code());
  EXPECT_TRUE(code32.db);
  EXPECT_FALSE(code32.l);
  EXPECT_EQ(code32.base, 0u);
  EXPECT_EQ(code32.effective_limit(), 0xffffffffu);

  const auto code16 = paging::decode_descriptor(gdt_entry(img, PROBE_SEL_CODE16));
  EXPECT_TRUE(code16.is_code());
  EXPECT_FALSE(code16.db);  // 16-bit: the way back to real mode
  EXPECT_EQ(code16.effective_limit(), 0xffffu);

  const auto code64 = paging::decode_descriptor(gdt_entry(img, PROBE_SEL_CODE64));
  EXPECT_TRUE(code64.is_code());
  EXPECT_TRUE(code64.l);
  EXPECT_FALSE(code64.db);  // L=1 requires D=0

  for (unsigned sel : {PROBE_SEL_DATA32, PROBE_SEL_DATA16}) {
    const auto d = paging::decode_descriptor(gdt_entry(img, sel));
    EXPECT_TRUE(d.is_data());
    EXPECT_TRUE(d.writable());
    EXPECT_EQ(d.dpl, 0u);
    EXPECT_TRUE(d.present);
  }
}

}  // namespace
}  // namespace pagelab::test

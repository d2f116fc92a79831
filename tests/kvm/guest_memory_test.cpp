#include "pagelab/kvm/guest_memory.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace pagelab::kvm {
namespace {

using paging::GuestPhys;

TEST(GuestMemory, StartsZeroedAndRoundTripsValues) {
  GuestMemory memory(GuestPhys{0x10000}, 0x2000);
  EXPECT_EQ(memory.base(), GuestPhys{0x10000});
  EXPECT_EQ(memory.size(), 0x2000u);
  EXPECT_EQ(memory.read<std::uint64_t>(GuestPhys{0x10100}), 0u);
  memory.write<std::uint32_t>(GuestPhys{0x10100}, 0xdeadbeef);
  EXPECT_EQ(memory.read<std::uint32_t>(GuestPhys{0x10100}), 0xdeadbeefu);
  // Little-endian, as the guest sees it.
  EXPECT_EQ(memory.read<std::uint8_t>(GuestPhys{0x10100}), 0xefu);
  const std::array<std::uint8_t, 3> bytes = {1, 2, 3};
  memory.write_bytes(GuestPhys{0x11ffd}, bytes);
  EXPECT_EQ(memory.read<std::uint8_t>(GuestPhys{0x11fff}), 3u);
}

TEST(GuestMemory, ContainsIsExactAtBothEnds) {
  const GuestMemory memory(GuestPhys{0x10000}, 0x1000);
  EXPECT_TRUE(memory.contains(GuestPhys{0x10000}, 0x1000));
  EXPECT_TRUE(memory.contains(GuestPhys{0x10fff}, 1));
  EXPECT_FALSE(memory.contains(GuestPhys{0x10fff}, 2));
  EXPECT_FALSE(memory.contains(GuestPhys{0xffff}, 1));
  EXPECT_FALSE(memory.contains(GuestPhys{0x11000}, 1));
  EXPECT_FALSE(memory.contains(GuestPhys{0x10000}, 0x1001));
}

TEST(GuestMemory, ContainsDoesNotWrapAround) {
  const GuestMemory memory(GuestPhys{0x10000}, 0x1000);
  EXPECT_FALSE(memory.contains(GuestPhys{0x10800}, std::numeric_limits<std::size_t>::max()));
  EXPECT_FALSE(memory.contains(GuestPhys{std::numeric_limits<std::uint64_t>::max()}, 2));
}

TEST(GuestMemory, OutOfBoundsAccessThrowsNamingGpaAndLength) {
  GuestMemory memory(GuestPhys{0x10000}, 0x1000);
  EXPECT_THROW((void)memory.read<std::uint16_t>(GuestPhys{0x10fff}), std::out_of_range);
  EXPECT_THROW(memory.write<std::uint8_t>(GuestPhys{0x11000}, 1), std::out_of_range);
  EXPECT_THROW((void)memory.host(GuestPhys{0x0}, 1), std::out_of_range);
  const std::array<std::uint8_t, 2> two = {1, 2};
  EXPECT_THROW(memory.write_bytes(GuestPhys{0x10fff}, two), std::out_of_range);
  try {
    (void)memory.host(GuestPhys{0x10ff0}, 0x20);
    FAIL() << "no exception";
  } catch (const std::out_of_range& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("0x10ff0"), std::string::npos) << text;
    EXPECT_NE(text.find("0x20"), std::string::npos) << text;
  }
}

TEST(GuestMemory, ZeroSizeIsRejected) {
  EXPECT_THROW(GuestMemory(GuestPhys{0}, 0), std::invalid_argument);
}

TEST(GuestMemory, MovesOwnership) {
  GuestMemory first(GuestPhys{0}, 0x1000);
  first.write<std::uint8_t>(GuestPhys{5}, 7);
  GuestMemory second(std::move(first));
  EXPECT_EQ(second.read<std::uint8_t>(GuestPhys{5}), 7u);
}

}  // namespace
}  // namespace pagelab::kvm

#include "pagelab/paging/physical_memory.hpp"

#include <fmt/core.h>

#include <cstring>
#include <stdexcept>

#include "pagelab/paging/bits.hpp"

namespace pagelab::paging {

PhysicalMemory::~PhysicalMemory() = default;

namespace {
constexpr std::uint64_t WordAlign = 8;
constexpr unsigned HalfShift = 32;
constexpr std::uint64_t LowHalf = bits(0, 31);
}  // namespace

std::uint32_t PhysicalMemory::read32(GuestPhys address) const {
  const std::uint64_t word = read64(GuestPhys(address.value() & ~(WordAlign - 1)));
  const unsigned shift = (address.value() % WordAlign) != 0 ? HalfShift : 0;
  return static_cast<std::uint32_t>((word >> shift) & LowHalf);
}

void PhysicalMemory::write32(GuestPhys address, std::uint32_t value) {
  const GuestPhys aligned(address.value() & ~(WordAlign - 1));
  const unsigned shift = (address.value() % WordAlign) != 0 ? HalfShift : 0;
  std::uint64_t word = read64(aligned);
  word = (word & ~(LowHalf << shift)) | (std::uint64_t{value} << shift);
  write64(aligned, word);
}

BufferMemory::BufferMemory(std::uint64_t size) : bytes_(size) {}

void BufferMemory::check(GuestPhys address, unsigned width) const {
  if (address.value() > bytes_.size() || bytes_.size() - address.value() < width) {
    throw std::out_of_range(
        fmt::format("physical address {:#x} (+{} bytes) is outside the {:#x}-byte memory",
                    address.value(), width, bytes_.size()));
  }
}

std::uint64_t BufferMemory::read64(GuestPhys address) const {
  check(address, 8);
  std::uint64_t v = 0;
  std::memcpy(&v, bytes_.data() + address.value(), sizeof v);  // x86 host: little-endian
  return v;
}

void BufferMemory::write64(GuestPhys address, std::uint64_t value) {
  check(address, 8);
  std::memcpy(bytes_.data() + address.value(), &value, sizeof value);
}

std::uint32_t BufferMemory::read32(GuestPhys address) const {
  check(address, 4);
  std::uint32_t v = 0;
  std::memcpy(&v, bytes_.data() + address.value(), sizeof v);
  return v;
}

void BufferMemory::write32(GuestPhys address, std::uint32_t value) {
  check(address, 4);
  std::memcpy(bytes_.data() + address.value(), &value, sizeof value);
}

std::uint64_t BufferMemory::size() const {
  return bytes_.size();
}

namespace {
constexpr unsigned SparseBits = 52;
}

std::uint64_t SparseMemory::read64(GuestPhys address) const {
  if (address.value() % WordAlign != 0 || address.value() >= bit(SparseBits)) {
    throw std::out_of_range(
        fmt::format("physical address {:#x} is unaligned or above 2^52", address.value()));
  }
  auto it = words_.find(address.value());
  return it == words_.end() ? 0 : it->second;
}

void SparseMemory::write64(GuestPhys address, std::uint64_t value) {
  if (address.value() % WordAlign != 0 || address.value() >= bit(SparseBits)) {
    throw std::out_of_range(
        fmt::format("physical address {:#x} is unaligned or above 2^52", address.value()));
  }
  words_[address.value()] = value;
}

std::uint64_t SparseMemory::size() const {
  return bit(SparseBits);
}

}  // namespace pagelab::paging

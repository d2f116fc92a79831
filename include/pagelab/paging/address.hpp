#pragma once
// Typed addresses: a guest-physical address, a linear (guest-virtual) address and a
// host pointer are different things, and the compiler should refuse to mix them.
#include <compare>
#include <cstdint>
#include <functional>

namespace pagelab::paging {

template <typename Tag>
class Address {
 public:
  constexpr Address() = default;
  constexpr explicit Address(std::uint64_t value) : value_(value) {}
  [[nodiscard]] constexpr std::uint64_t value() const { return value_; }
  constexpr auto operator<=>(const Address&) const = default;
  constexpr Address operator+(std::uint64_t off) const { return Address(value_ + off); }
  constexpr Address operator-(std::uint64_t off) const { return Address(value_ - off); }
  constexpr std::uint64_t operator-(Address other) const { return value_ - other.value_; }
  constexpr Address& operator+=(std::uint64_t off) {
    value_ += off;
    return *this;
  }

 private:
  std::uint64_t value_ = 0;
};

struct GuestPhysTag {};
struct LinearTag {};

// Guest-physical: what page-table entries and CR3 hold.
using GuestPhys = Address<GuestPhysTag>;
// Linear (guest-virtual after segmentation): what the page walk translates.
using Linear = Address<LinearTag>;

}  // namespace pagelab::paging

template <typename Tag>
struct std::hash<pagelab::paging::Address<Tag>> {
  std::size_t operator()(pagelab::paging::Address<Tag> a) const noexcept {
    return std::hash<std::uint64_t>{}(a.value());
  }
};

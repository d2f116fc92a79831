#pragma once
// Hands out 4 KiB physical frames for page tables from a fixed range. The builder
// zeroes what it gets; the allocator only counts.
#include <cstdint>

#include "pagelab/paging/address.hpp"

namespace pagelab::paging {

class FrameAllocator {
 public:
  static constexpr std::uint64_t FrameSize = 4096;
  // [first, limit): first is rounded up, limit down, to 4 KiB.
  FrameAllocator(GuestPhys first, GuestPhys limit);
  // Throws std::runtime_error when the range is exhausted.
  GuestPhys allocate();
  [[nodiscard]] std::uint64_t used() const { return (next_ - first_) / FrameSize; }
  [[nodiscard]] GuestPhys first() const { return first_; }
  [[nodiscard]] GuestPhys next() const { return next_; }
  [[nodiscard]] GuestPhys limit() const { return limit_; }

 private:
  GuestPhys first_, next_, limit_;
};

}  // namespace pagelab::paging

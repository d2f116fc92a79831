#include "pagelab/paging/frame_allocator.hpp"

#include <fmt/core.h>

#include <stdexcept>

namespace pagelab::paging {

FrameAllocator::FrameAllocator(GuestPhys first, GuestPhys limit)
    : first_((first.value() + FrameSize - 1) & ~(FrameSize - 1)),
      next_(first_),
      limit_(limit.value() & ~(FrameSize - 1)) {
  if (limit_ < first_) {
    throw std::invalid_argument(
        fmt::format("frame range [{:#x}, {:#x}) is empty", first.value(), limit.value()));
  }
}

GuestPhys FrameAllocator::allocate() {
  if (limit_ - next_ < FrameSize) {
    throw std::runtime_error(
        fmt::format("out of page-table frames: all {} frames in [{:#x}, {:#x}) are used; give the "
                    "FrameAllocator a larger range",
                    used(), first_.value(), limit_.value()));
  }
  const GuestPhys frame = next_;
  next_ += FrameSize;
  return frame;
}

}  // namespace pagelab::paging

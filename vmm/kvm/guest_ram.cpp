#include "pagelab/kvm/guest_ram.hpp"

#include <fmt/core.h>

namespace pagelab::kvm {

std::uint8_t* GuestRam::host(paging::GuestPhys gpa, std::size_t len) {
  if (!contains(gpa, len)) {
    throw std::out_of_range(
        fmt::format("guest-physical range {:#x}+{:#x} is outside guest memory [{:#x}, {:#x})",
                    gpa.value(), len, base_.value(), base_.value() + size_));
  }
  return data_ + (gpa.value() - base_.value());
}

const std::uint8_t* GuestRam::host(paging::GuestPhys gpa, std::size_t len) const {
  return const_cast<GuestRam*>(this)->host(gpa, len);
}

}  // namespace pagelab::kvm

#pragma once
// The lab's name for the bounds-checked view of guest RAM every backend provides.
#include "pagelab/kvm/guest_ram.hpp"

namespace pagelab::lab {
using GuestRam = kvm::GuestRam;
}  // namespace pagelab::lab

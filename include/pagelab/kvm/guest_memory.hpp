#pragma once
// One contiguous block of guest RAM: an anonymous host mapping that a memory slot
// exposes at a guest-physical base, accessed through its bounds-checked GuestRam view.
#include <cstddef>

#include "pagelab/kvm/file_descriptor.hpp"
#include "pagelab/kvm/guest_ram.hpp"
#include "pagelab/paging/address.hpp"

namespace pagelab::kvm {

namespace detail {
// A base class so the mapping exists before the GuestRam view of it is built.
struct AnonymousMapping {
  explicit AnonymousMapping(paging::GuestPhys base, std::size_t size);
  Mapping mapping;
};
}  // namespace detail

class GuestMemory : private detail::AnonymousMapping, public GuestRam {
 public:
  // Zero-filled. `size` need not be page-aligned here (KVM will refuse such a slot).
  GuestMemory(paging::GuestPhys base, std::size_t size);
};

}  // namespace pagelab::kvm

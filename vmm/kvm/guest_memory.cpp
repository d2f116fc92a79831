#include "pagelab/kvm/guest_memory.hpp"

#include <sys/mman.h>

#include <fmt/format.h>
#include <cerrno>
#include <stdexcept>

#include "pagelab/kvm/error.hpp"

namespace pagelab::kvm {

detail::AnonymousMapping::AnonymousMapping(paging::GuestPhys base, std::size_t size) {
  if (size == 0) {
    throw std::invalid_argument(
        fmt::format("guest memory at GPA {:#x}: size must not be 0", base.value()));
  }
  // NORESERVE: a large guest RAM costs nothing until the guest touches it.
  void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (address == MAP_FAILED) {
    throw KvmError("mmap guest memory", errno, fmt::format("{:#x} bytes", size));
  }
  mapping = Mapping(address, size);
}

GuestMemory::GuestMemory(paging::GuestPhys base, std::size_t size)
    : AnonymousMapping(base, size),
      GuestRam(base, static_cast<std::uint8_t*>(mapping.get()), size) {}

}  // namespace pagelab::kvm

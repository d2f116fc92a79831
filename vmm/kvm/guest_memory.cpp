#include "pagelab/kvm/guest_memory.hpp"

#include <sys/mman.h>

#include <fmt/format.h>
#include <cerrno>
#include <stdexcept>
#include <utility>

#include "pagelab/kvm/error.hpp"

namespace pagelab::kvm {

GuestMemory::GuestMemory(paging::GuestPhys base, std::size_t size) : base_(base), size_(size) {
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
  mapping_ = Mapping(address, size);
}

bool GuestMemory::contains(paging::GuestPhys gpa, std::size_t len) const {
  // Written so that no sum can wrap around, whatever the guest reported.
  if (gpa < base_) {
    return false;
  }
  const std::uint64_t offset = gpa - base_;
  return len <= size_ && offset <= size_ - len;
}

std::uint8_t* GuestMemory::host(paging::GuestPhys gpa, std::size_t len) {
  return const_cast<std::uint8_t*>(std::as_const(*this).host(gpa, len));
}

const std::uint8_t* GuestMemory::host(paging::GuestPhys gpa, std::size_t len) const {
  if (!contains(gpa, len)) {
    throw std::out_of_range(
        fmt::format("guest-physical range {:#x}+{:#x} is outside guest memory [{:#x}, {:#x})",
                    gpa.value(), len, base_.value(), base_.value() + size_));
  }
  return static_cast<const std::uint8_t*>(mapping_.get()) + (gpa - base_);
}

void GuestMemory::write_bytes(paging::GuestPhys gpa, std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) {
    return;
  }
  std::memcpy(host(gpa, bytes.size()), bytes.data(), bytes.size());
}

void GuestMemory::fill(paging::GuestPhys gpa, std::size_t len, std::uint8_t value) {
  if (len == 0) {
    return;
  }
  std::memset(host(gpa, len), value, len);
}

}  // namespace pagelab::kvm

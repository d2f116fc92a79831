#pragma once
// Guest RAM as the host sees it: a view of host memory that holds guest-physical
// [base, base+size). GuestMemory is one that owns its mapping (a KVM memory slot);
// the lab's QEMU backend makes one over the memfd it shares with QEMU. Every access
// is bounds-checked, because the guest (and the GPAs it reports) is untrusted.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <type_traits>

#include "pagelab/paging/address.hpp"

namespace pagelab::kvm {

class GuestRam {
 public:
  GuestRam(paging::GuestPhys base, std::uint8_t* data, std::size_t size)
      : base_(base), data_(data), size_(size) {}

  [[nodiscard]] paging::GuestPhys base() const { return base_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  // Written so that no sum can wrap around, whatever the guest reported.
  [[nodiscard]] bool contains(paging::GuestPhys gpa, std::size_t len) const {
    const auto a = gpa.value();
    return a >= base_.value() && len <= size_ && a - base_.value() <= size_ - len;
  }
  // Throws std::out_of_range when [gpa, gpa+len) is not wholly inside guest RAM.
  [[nodiscard]] std::uint8_t* host(paging::GuestPhys gpa, std::size_t len);
  [[nodiscard]] const std::uint8_t* host(paging::GuestPhys gpa, std::size_t len) const;

  template <class T>
  [[nodiscard]] T read(paging::GuestPhys gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    std::memcpy(&value, host(gpa, sizeof(T)), sizeof(T));
    return value;
  }
  template <class T>
  void write(paging::GuestPhys gpa, T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::memcpy(host(gpa, sizeof(T)), &value, sizeof(T));
  }
  void write_bytes(paging::GuestPhys gpa, std::span<const std::uint8_t> bytes) {
    if (!bytes.empty()) std::memcpy(host(gpa, bytes.size()), bytes.data(), bytes.size());
  }
  void fill(paging::GuestPhys gpa, std::size_t len, std::uint8_t value) {
    if (len != 0) std::memset(host(gpa, len), value, len);
  }

 private:
  paging::GuestPhys base_;
  std::uint8_t* data_;
  std::size_t size_;
};

}  // namespace pagelab::kvm

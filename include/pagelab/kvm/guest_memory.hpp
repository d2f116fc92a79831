#pragma once
// One contiguous block of guest RAM: an anonymous host mapping that a memory slot
// exposes at a guest-physical base. Every access is bounds-checked, because the
// guest (and the GPAs it reports) is untrusted.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

#include "pagelab/kvm/file_descriptor.hpp"
#include "pagelab/paging/address.hpp"

namespace pagelab::kvm {

class GuestMemory {
 public:
  // Zero-filled. `size` need not be page-aligned here (KVM will refuse such a slot).
  GuestMemory(paging::GuestPhys base, std::size_t size);

  [[nodiscard]] paging::GuestPhys base() const { return base_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool contains(paging::GuestPhys gpa, std::size_t len) const;

  // Throws std::out_of_range naming the GPA and the length when [gpa, gpa+len) is
  // not wholly inside this block.
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
  void write_bytes(paging::GuestPhys gpa, std::span<const std::uint8_t> bytes);
  void fill(paging::GuestPhys gpa, std::size_t len, std::uint8_t value);

 private:
  paging::GuestPhys base_;
  std::size_t size_;
  Mapping mapping_;
};

}  // namespace pagelab::kvm

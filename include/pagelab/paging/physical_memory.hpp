#pragma once
// Physical memory as the walker and the builder see it. The lab binds it to guest RAM;
// tests use BufferMemory; `explain --tables` uses SparseMemory.
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <utility>
#include <vector>

#include "pagelab/paging/address.hpp"

namespace pagelab::paging {

class PhysicalMemory {
 public:
  virtual ~PhysicalMemory();
  // Little-endian, naturally aligned accesses; out of range throws std::out_of_range.
  virtual std::uint64_t read64(GuestPhys address) const = 0;
  virtual void write64(GuestPhys address, std::uint64_t value) = 0;
  // Default: through the aligned 64-bit word containing the value.
  virtual std::uint32_t read32(GuestPhys address) const;
  virtual void write32(GuestPhys address, std::uint32_t value);
  virtual std::uint64_t size() const = 0;
};

// Storage that calloc() hands out already zero (for a large size, fresh pages the kernel
// maps only when touched): a 16 MiB model of guest RAM costs nothing until written.
// Elements are default-initialised, not zeroed again.
template <class T>
struct ZeroedAllocator {
  using value_type = T;
  ZeroedAllocator() = default;
  template <class U>
  explicit ZeroedAllocator(const ZeroedAllocator<U>& /*other*/) {}
  T* allocate(std::size_t n) {
    void* p = std::calloc(n, sizeof(T));
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t /*n*/) noexcept { std::free(p); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  bool operator==(const ZeroedAllocator& /*other*/) const = default;
};

// A zero-filled byte buffer starting at physical address 0.
class BufferMemory : public PhysicalMemory {
 public:
  explicit BufferMemory(std::uint64_t size);
  std::uint64_t read64(GuestPhys address) const override;
  void write64(GuestPhys address, std::uint64_t value) override;
  std::uint32_t read32(GuestPhys address) const override;
  void write32(GuestPhys address, std::uint32_t value) override;
  std::uint64_t size() const override;
  using Bytes = std::vector<std::uint8_t, ZeroedAllocator<std::uint8_t>>;
  Bytes& bytes() { return bytes_; }
  const Bytes& bytes() const { return bytes_; }

 private:
  void check(GuestPhys address, unsigned width) const;
  Bytes bytes_;
};

// A 2^52-byte address space that is zero except where written; for page-table dumps
// taken elsewhere, whose tables may sit anywhere in physical memory.
class SparseMemory : public PhysicalMemory {
 public:
  std::uint64_t read64(GuestPhys address) const override;
  void write64(GuestPhys address, std::uint64_t value) override;
  std::uint64_t size() const override;

 private:
  std::map<std::uint64_t, std::uint64_t> words_;  // by 8-byte-aligned address
};

}  // namespace pagelab::paging

#pragma once
// Physical memory as the walker and the builder see it. The lab binds it to guest RAM;
// tests use BufferMemory; `explain --tables` uses SparseMemory.
#include <cstdint>
#include <map>
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

// A zero-filled byte buffer starting at physical address 0.
class BufferMemory : public PhysicalMemory {
 public:
  explicit BufferMemory(std::uint64_t size);
  std::uint64_t read64(GuestPhys address) const override;
  void write64(GuestPhys address, std::uint64_t value) override;
  std::uint32_t read32(GuestPhys address) const override;
  void write32(GuestPhys address, std::uint32_t value) override;
  std::uint64_t size() const override;
  std::vector<std::uint8_t>& bytes() { return bytes_; }
  const std::vector<std::uint8_t>& bytes() const { return bytes_; }

 private:
  void check(GuestPhys address, unsigned width) const;
  std::vector<std::uint8_t> bytes_;
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

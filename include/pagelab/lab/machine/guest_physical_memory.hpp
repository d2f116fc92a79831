#pragma once
// Guest RAM seen through the paging model's PhysicalMemory interface, so the builder
// and the oracle walk the very tables the guest uses.
#include "pagelab/lab/backend/guest_ram.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::lab {

class GuestPhysicalMemory : public paging::PhysicalMemory {
 public:
  explicit GuestPhysicalMemory(GuestRam ram) : ram_(ram) {}
  std::uint64_t read64(paging::GuestPhys address) const override {
    return ram_.read<std::uint64_t>(address);
  }
  void write64(paging::GuestPhys address, std::uint64_t value) override {
    ram_.write<std::uint64_t>(address, value);
  }
  std::uint32_t read32(paging::GuestPhys address) const override {
    return ram_.read<std::uint32_t>(address);
  }
  void write32(paging::GuestPhys address, std::uint32_t value) override {
    ram_.write<std::uint32_t>(address, value);
  }
  std::uint64_t size() const override { return ram_.base().value() + ram_.size(); }

 private:
  GuestRam ram_;
};

}  // namespace pagelab::lab

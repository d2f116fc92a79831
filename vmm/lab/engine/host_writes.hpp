#pragma once
// Guest RAM as the host's own edits reach it (ExperimentSpace: maps, entries, frames):
// records the pages written, so that the judge's model of RAM is brought up to date
// page by page instead of by copying all of guest RAM at every batch.
#include <cstdint>
#include <set>

#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::lab {

class HostWrites : public paging::PhysicalMemory {
 public:
  explicit HostWrites(paging::PhysicalMemory& ram) : ram_(ram) {}
  std::uint64_t read64(paging::GuestPhys a) const override { return ram_.read64(a); }
  std::uint32_t read32(paging::GuestPhys a) const override { return ram_.read32(a); }
  void write64(paging::GuestPhys a, std::uint64_t v) override {
    ram_.write64(a, v);
    pages_.insert(a.value() / Page);
  }
  void write32(paging::GuestPhys a, std::uint32_t v) override {
    ram_.write32(a, v);
    pages_.insert(a.value() / Page);
  }
  std::uint64_t size() const override { return ram_.size(); }
  // Page numbers written since the last take().
  std::set<std::uint64_t> take() { return std::exchange(pages_, {}); }
  static constexpr std::uint64_t Page = 4096;

 private:
  paging::PhysicalMemory& ram_;
  std::set<std::uint64_t> pages_;
};

}  // namespace pagelab::lab

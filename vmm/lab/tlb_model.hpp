#pragma once
// What the TLB may still hold: for every page the probe reached successfully, the
// paging-structure entries its walk used, as they were then. A stale translation is
// the walk over those remembered entries; invalidations drop them as the SDM
// (§4.10.4) requires. Conservative on purpose: it forgets only what the architecture
// says must be forgotten, so "stale" is allowed wherever a CPU may legally show it.
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab {

// A PhysicalMemory that shows `overrides` over `base` (read-only).
class OverlayMemory : public paging::PhysicalMemory {
 public:
  OverlayMemory(const paging::PhysicalMemory& base,
                const std::map<std::uint64_t, std::uint64_t>& overrides)
      : base_(base), overrides_(overrides) {}
  std::uint64_t read64(paging::GuestPhys address) const override;
  void write64(paging::GuestPhys address, std::uint64_t value) override;
  std::uint64_t size() const override { return base_.size(); }

 private:
  const paging::PhysicalMemory& base_;
  const std::map<std::uint64_t, std::uint64_t>& overrides_;
};

class TlbModel {
 public:
  struct Cached {
    std::uint64_t base = 0, bytes = 0;
    bool global = false;
    std::map<std::uint64_t, std::uint64_t> path;  // entry GPA -> value when cached
  };
  // Remembers the translation `walk` produced (it must have succeeded).
  void fill(const paging::Walk& walk, bool pge);
  [[nodiscard]] const Cached* lookup(paging::Linear address) const;
  void invalidate(paging::Linear address);  // INVLPG, INVPCID type 0, a #PF
  void flush_non_global();                  // MOV CR3
  void flush_all();                         // CR4.PGE change
  [[nodiscard]] std::size_t size() const { return pages_.size(); }

 private:
  std::map<std::uint64_t, Cached> pages_;  // by page base
};

}  // namespace pagelab::lab

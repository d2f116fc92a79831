#pragma once
// Walks over remembered paging-structure entries: what a TLB or paging-structure-cache
// item answers now (translation_cache.hpp keeps the items; the judge walks them).
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab::judge {

// A PhysicalMemory that shows `overrides` over `base` (read-only). The overrides are
// paging-structure entries of `entry_bytes` (4 in 32-bit paging, else 8), keyed by
// their address, as walks record them.
class OverlayMemory : public paging::PhysicalMemory {
 public:
  OverlayMemory(const paging::PhysicalMemory& base,
                const std::map<std::uint64_t, std::uint64_t>& overrides,
                unsigned entry_bytes = sizeof(std::uint64_t))
      : base_(base), overrides_(overrides), entry_bytes_(entry_bytes) {}
  std::uint64_t read64(paging::GuestPhys address) const override;
  void write64(paging::GuestPhys address, std::uint64_t value) override;
  std::uint32_t read32(paging::GuestPhys address) const override;
  std::uint64_t size() const override { return base_.size(); }

 private:
  const paging::PhysicalMemory& base_;
  const std::map<std::uint64_t, std::uint64_t>& overrides_;
  unsigned entry_bytes_;
};

// Memory as a platform that ignores a PAE PDPTE's A bit (TCG sets it) loads the PDPTEs:
// the four at `root` read without it, everything else as `base` has it (read-only).
class PdptesUnaccessed : public paging::PhysicalMemory {
 public:
  PdptesUnaccessed(const paging::PhysicalMemory& base, paging::GuestPhys root)
      : base_(base), root_(root.value()) {}
  std::uint64_t read64(paging::GuestPhys address) const override;
  void write64(paging::GuestPhys address, std::uint64_t value) override;
  std::uint64_t size() const override { return base_.size(); }

 private:
  const paging::PhysicalMemory& base_;
  std::uint64_t root_;
};

// Walks `tables` as a TLB entry filled under `cached_efer`/`cached_cr4` would answer now.
// An entry keeps the translation and the combined access rights of its walk; the rights
// are checked at each access against the current CR0.WP, CR4.SMEP/SMAP/PKE, PKRU and
// EFER.NXE (SDM §4.10.2.2). What the walk decided from the control bits is frozen: a
// 4 MiB page under CR4.PSE stays one, and an XD bit that was no reserved bit (NXE=1)
// still passed the walk; with NXE cleared since, XD no longer forbids fetches. WRMSR
// to EFER and MOV to CR4 changing PSE invalidate nothing (SDM §4.10.4.1).
paging::Walk walk_cached(const paging::PhysicalMemory& tables, const paging::CpuState& now,
                         std::uint64_t cached_efer, std::uint64_t cached_cr4,
                         const paging::Access& access);
// True when a translation cached under these bits may answer differently now.
bool walk_bits_changed(const paging::CpuState& now, std::uint64_t cached_efer,
                       std::uint64_t cached_cr4);

}  // namespace pagelab::lab::judge

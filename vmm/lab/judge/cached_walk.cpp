#include "judge/cached_walk.hpp"

#include <stdexcept>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::lab::judge {

std::uint64_t OverlayMemory::read64(paging::GuestPhys address) const {
  if (entry_bytes_ == sizeof(std::uint32_t)) {
    return read32(address) | std::uint64_t{read32(address + sizeof(std::uint32_t))} << 32;
  }
  const auto it = overrides_.find(address.value());
  return it == overrides_.end() ? base_.read64(address) : it->second;
}

std::uint32_t OverlayMemory::read32(paging::GuestPhys address) const {
  if (entry_bytes_ == sizeof(std::uint32_t)) {
    const auto it = overrides_.find(address.value());
    return it == overrides_.end() ? base_.read32(address) : static_cast<std::uint32_t>(it->second);
  }
  return PhysicalMemory::read32(address);  // through read64 of the containing word
}

std::uint64_t PdptesUnaccessed::read64(paging::GuestPhys address) const {
  constexpr std::uint64_t Word = sizeof(std::uint64_t);
  const auto v = base_.read64(address);
  const bool pdpte =
      address.value() - root_ < paging::PaePdpte::Count * Word && address.value() % Word == 0;
  return pdpte ? v & ~paging::Pte::Accessed : v;
}

void PdptesUnaccessed::write64(paging::GuestPhys, std::uint64_t) {
  throw std::logic_error("PdptesUnaccessed is read-only");
}

void OverlayMemory::write64(paging::GuestPhys, std::uint64_t) {
  throw std::logic_error("OverlayMemory is read-only");
}

namespace {

// Entries with their XD bit cleared: what the cached rights mean once NXE is 0.
class WithoutExecuteDisable : public paging::PhysicalMemory {
 public:
  explicit WithoutExecuteDisable(const paging::PhysicalMemory& base) : base_(base) {}
  std::uint64_t read64(paging::GuestPhys address) const override {
    return base_.read64(address) & ~paging::Pte::NoExecute;
  }
  std::uint32_t read32(paging::GuestPhys address) const override { return base_.read32(address); }
  void write64(paging::GuestPhys, std::uint64_t) override {
    throw std::logic_error("WithoutExecuteDisable is read-only");
  }
  std::uint64_t size() const override { return base_.size(); }

 private:
  const paging::PhysicalMemory& base_;
};

}  // namespace

bool walk_bits_changed(const paging::CpuState& now, std::uint64_t cached_efer,
                       std::uint64_t cached_cr4) {
  return ((now.efer ^ cached_efer) & paging::Efer::Nxe) != 0 ||
         ((now.cr4 ^ cached_cr4) & paging::Cr4::Pse) != 0;
}

paging::Walk walk_cached(const paging::PhysicalMemory& tables, const paging::CpuState& now,
                         std::uint64_t cached_efer, std::uint64_t cached_cr4,
                         const paging::Access& access) {
  auto s = now;
  s.efer = (now.efer & ~paging::Efer::Nxe) | (cached_efer & paging::Efer::Nxe);
  s.cr4 = (now.cr4 & ~paging::Cr4::Pse) | (cached_cr4 & paging::Cr4::Pse);
  if ((cached_efer & ~now.efer & paging::Efer::Nxe) != 0) {
    return paging::walk(WithoutExecuteDisable(tables), s, access);
  }
  return paging::walk(tables, s, access);
}

}  // namespace pagelab::lab::judge

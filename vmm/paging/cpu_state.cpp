#include "pagelab/paging/cpu_state.hpp"

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_format.hpp"

namespace pagelab::paging {

GuestPhys CpuState::root() const {
  switch (mode()) {
    case PagingMode::Bits32:
      return GuestPhys(cr3 & bits(12, 31));
    case PagingMode::Pae:
      return GuestPhys(cr3 & bits(5, 31));
    case PagingMode::Level4:
    case PagingMode::Level5:
      return GuestPhys(cr3 & phys_mask(features) & ~bits(0, 11));
    case PagingMode::None:
      break;
  }
  return GuestPhys(0);
}

CpuState make_cpu_state(PagingMode mode, GuestPhys root, CpuFeatures features) {
  CpuState s;
  s.features = features;
  s.rflags = Rflags::Fixed1;
  s.cr3 = root.value();
  if (mode == PagingMode::None) return s;
  s.cr0 = Cr0::Pe | Cr0::Pg | Cr0::Wp;
  if (mode == PagingMode::Bits32) {
    if (features.pse) s.cr4 |= Cr4::Pse;
    return s;
  }
  s.cr4 |= Cr4::Pae;
  if (features.nx) s.efer |= Efer::Nxe;
  if (mode == PagingMode::Pae) return s;
  s.efer |= Efer::Lme | Efer::Lma;
  if (mode == PagingMode::Level5) s.cr4 |= Cr4::La57;
  return s;
}

}  // namespace pagelab::paging

#include "pagelab/matrix/case_layout.hpp"

#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::matrix {

using paging::PageSize;
using paging::PagingMode;
using paging::Pte;
using paging::Pte32;

CaseLayout layout_of(const MatrixMode& mode) {
  CaseLayout l{};
  // A top-level index of their own: the probe's identity map is at index 0 and its user
  // alias near the top (PROBE_USER_ALIAS, PROBE_USER_ALIAS32).
  switch (mode.paging) {
    case PagingMode::Level5:
      l.va = paging::Linear(0x0050'0000'0000'0000);
      break;
    case PagingMode::Level4:
      l.va = paging::Linear(0x0000'5000'0000'0000);
      break;
    default:
      l.va = paging::Linear(0x8000'0000);
      break;
  }
  // 8 MiB: inside the engine's frame pool and aligned for 2 and 4 MiB pages. A 1 GiB
  // page maps guest-physical 0 upwards: the same 8 MiB within it.
  const std::uint64_t frame = 0x80'0000;
  if (mode.leaf_size == PageSize::Size1G) {
    l.frame = paging::GuestPhys(0);
    l.data_offset = frame + 0x100;
    l.fetch_offset = frame + 0x800;
  } else {
    l.frame = paging::GuestPhys(frame);
    l.data_offset = 0x100;
    l.fetch_offset = 0x800;
  }
  return l;
}

namespace {

bool large_leaf(const MatrixMode& mode, unsigned level) {
  return level == mode.leaf_level && mode.leaf_size != PageSize::Size4K;
}

}  // namespace

std::uint64_t entry_bits(const MatrixMode& mode, unsigned level, std::uint16_t flags,
                         unsigned maxphyaddr) {
  std::uint64_t v = 0;
  const bool bits32 = mode.paging == PagingMode::Bits32;
  if ((flags & FlagP) != 0) v |= Pte::Present;
  if ((flags & FlagRw) != 0) v |= Pte::Writable;
  if ((flags & FlagUs) != 0) v |= Pte::User;
  if ((flags & FlagA) != 0) v |= Pte::Accessed;
  if ((flags & FlagD) != 0) v |= Pte::Dirty;
  if ((flags & FlagNx) != 0) v |= Pte::NoExecute;
  if ((flags & FlagPk) != 0) v |= std::uint64_t{1} << Pte::ProtectionKeyShift;
  if ((flags & FlagR51) != 0) v |= paging::bit(51);
  if ((flags & FlagRmax) != 0) v |= paging::bit(maxphyaddr);
  if ((flags & FlagRps) != 0) v |= Pte::PageSize;
  if ((flags & FlagRlow) != 0) v |= paging::bit(bits32 ? Pte32::Pse36ReservedHi : 13);
  // A large leaf keeps PS whatever else it has (present or not: a not-present entry
  // ignores it).
  if (large_leaf(mode, level) && (flags & FlagP) != 0) v |= Pte::PageSize;
  return v;
}

std::uint64_t owned_bits(const MatrixMode& mode, unsigned level, unsigned maxphyaddr) {
  const bool long_mode = mode.paging == PagingMode::Level4 || mode.paging == PagingMode::Level5;
  std::uint64_t v = 0;
  for (unsigned i = 0; i < FlagCount; ++i) {
    const auto f = static_cast<std::uint16_t>(1u << i);
    if (mode.paging == PagingMode::Bits32 &&
        (f & (FlagNx | FlagPk | FlagR51 | FlagRmax | FlagRps)) != 0)
      continue;
    // Bit 13 and bit 7 are address or PS bits except where these flags exist.
    if (f == FlagRlow && !large_leaf(mode, level)) continue;
    if (f == FlagRps && !(long_mode && level >= 4)) continue;
    v |= entry_bits(mode, level, static_cast<std::uint16_t>(f | FlagP), maxphyaddr);
  }
  return v;
}

}  // namespace pagelab::matrix

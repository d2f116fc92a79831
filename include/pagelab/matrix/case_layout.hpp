#pragma once
// Where a matrix case lives in the guest and what its flags mean in bits: the linear
// address it maps (its own top-level entry, away from the probe's), the frame, the
// offsets of the data word and of the fetched instruction, and each entry's bits.
#include <cstdint>

#include "pagelab/matrix/flag_space.hpp"
#include "pagelab/paging/address.hpp"

namespace pagelab::matrix {

struct CaseLayout {
  paging::Linear va;           // the page the cases map (aligned to the leaf size)
  paging::GuestPhys frame;     // what the leaf maps
  std::uint64_t data_offset;   // reads and writes (8 bytes)
  std::uint64_t fetch_offset;  // fetches: the engine plants its 2-byte return there
};
CaseLayout layout_of(const MatrixMode& mode);

// The architectural bits of `flags` in an entry at `level` of `mode` (no address),
// PS included for a large leaf. `maxphyaddr` places FlagRmax.
std::uint64_t entry_bits(const MatrixMode& mode, unsigned level, std::uint16_t flags,
                         unsigned maxphyaddr);
// The bits entry_bits() may produce at `level`: what a case owns of an entry (the rest
// is the address of the next table or of the frame).
std::uint64_t owned_bits(const MatrixMode& mode, unsigned level, unsigned maxphyaddr);

}  // namespace pagelab::matrix

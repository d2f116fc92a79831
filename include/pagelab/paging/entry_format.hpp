#pragma once
// What an entry means at a given level of a given mode: which bits exist, where the
// address field is, whether it is a leaf, and which bits are reserved (SDM tables
// 4-4..4-20 and §4.6.1 "reserved bits"). Shared by the walker, the builder, the dumps
// and `decode pte`.
#include <cstdint>
#include <string>
#include <vector>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::paging {

// A group of bits that must be zero in this entry, and why.
struct ReservedField {
  std::uint64_t mask;
  std::string reason;
};

struct NamedBit {
  std::string name;  // "P", "RW", "US", "PWT", "PCD", "A", "D", "PS", "PAT", "G", "XD"
  unsigned position;
  bool set;
};

struct EntryDecoding {
  PagingMode mode = PagingMode::None;
  unsigned level = 0;
  std::string intel_name, linux_name;
  std::uint64_t value = 0;
  bool present = false;
  // Maps a page: a PT entry, or PS=1 where PS is honoured (PD; PDPT in 4/5-level).
  bool leaf = false;
  PageSize page_size = PageSize::Size4K;  // meaningful when leaf
  GuestPhys address;                      // the next table, or the page frame when leaf
  std::vector<NamedBit> flags;            // the bits that exist at this level
  unsigned protection_key = 0;            // leaves of 4/5-level paging
  std::vector<ReservedField> reserved;    // reserved fields that apply to this entry
  std::vector<ReservedField> violations;  // those with a bit set (only count if present)
  std::string meaning;                    // one line, e.g. "points to a PD at 0x6000"
};

// Mask of the physical-address bits an entry can hold (MAXPHYADDR-1 down to 0).
std::uint64_t phys_mask(const CpuFeatures& features);

// Decodes `value` as an entry at `level` under `state` (CR4.PSE/PKE, EFER.NXE and the
// features decide what is reserved and whether PS is honoured). Throws
// std::invalid_argument if `level` does not exist in the state's mode.
EntryDecoding decode_entry(const CpuState& state, unsigned level, std::uint64_t value);

// Short flag string for dumps, e.g. "P RW US A D XD" (only the bits that are set).
std::string flag_summary(const EntryDecoding& decoded);

}  // namespace pagelab::paging

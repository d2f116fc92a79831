#include "pagelab/paging/decide.hpp"

#include <fmt/core.h>

#include <stdexcept>

#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/walker_text.hpp"

namespace pagelab::paging {

void throw_outside_flat_memory(GuestPhys at, unsigned bytes, std::uint64_t size) {
  throw std::out_of_range(
      fmt::format("physical address {:#x} (+{} bytes) is outside the {:#x}-byte memory", at.value(),
                  bytes, size));
}

void throw_wider_than_32_bits(std::uint64_t address, PagingMode mode) {
  throw std::invalid_argument(fmt::format(
      "linear address {:#x} is wider than 32 bits; {} paging translates 32-bit addresses", address,
      to_string(mode)));
}

Decision decide(const FlatMemory& memory, const CpuState& state, const Access& access) {
  return decide<FlatMemory>(memory, state, access);
}

Decision decide(const PhysicalMemory& memory, const CpuState& state, const Access& access) {
  return decide(PhysicalMemoryView{memory}, state, access);
}

Outcome to_outcome(const Decision& d) {
  switch (d.kind) {
    case Decision::Kind::GeneralProtection:
      return GeneralProtection{d.error_code, non_canonical_reason(d.address, d.linear_width)};
    case Decision::Kind::PageFault: {
      PageFault pf{d.error_code, d.address, {}};
      pf.may_set_accessed.reserve(d.entry_count);
      // The entry that faulted never gets A; those used before it may.
      for (unsigned i = 0; i + 1 < d.entry_count; ++i) {
        if (!d.entries[i].pdpte_register) {
          pf.may_set_accessed.emplace_back(d.entries[i].address, Pte::Accessed);
        }
      }
      return pf;
    }
    case Decision::Kind::Translation:
      break;
  }
  Translation t;
  t.physical = d.physical;
  t.page_size = d.page_size;
  t.writable = d.writable;
  t.user = d.user;
  t.executable = d.executable;
  t.page_base = d.page_base;
  t.frame = d.frame;
  t.global = d.global;
  t.protection_key = d.protection_key;
  t.ad_updates.reserve(d.entry_count);  // one allocation, not one per doubling
  for (unsigned i = 0; i < d.entry_count; ++i) {
    if (!d.entries[i].pdpte_register)
      t.ad_updates.emplace_back(d.entries[i].address, Pte::Accessed);
  }
  if (d.entry_count > 0) {
    const DecidedEntry& leaf = d.entries[d.entry_count - 1];
    t.leaf_entry_address = leaf.address;
    t.leaf_entry = leaf.value;
    if (d.write) t.ad_updates.back().second |= Pte::Dirty;
  }
  return t;
}

}  // namespace pagelab::paging

#pragma once
// The oracle's decision without its explanation: what one access does (translation,
// #PF or #GP, error code, CR2, effective rights, the entries read and the A/D bits it
// sets). Same rules as walk() (both run walk_core.hpp); use this on hot paths and
// walk() when something is printed.
//
// Like walk(), decide() throws std::invalid_argument for an address wider than 32 bits
// in a 32-bit mode (bad input, not an architectural outcome) and std::out_of_range if an
// entry lies outside the memory; everything architectural is a Decision.
#include "pagelab/paging/decision.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "pagelab/paging/walk_core.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::paging {

// Reads a PhysicalMemory (virtual calls) for the decision walk.
struct PhysicalMemoryView {
  const PhysicalMemory& memory;
  [[nodiscard]] std::uint64_t read(GuestPhys at, unsigned bytes) const {
    return bytes == sizeof(std::uint32_t) ? memory.read32(at) : memory.read64(at);
  }
};

template <PagingMemory Memory>
Decision decide(const Memory& memory, const CpuState& state, const Access& access) {
  NoTracer tracer;
  return walk_core(memory, state, access, tracer);
}

Decision decide(const FlatMemory& memory, const CpuState& state, const Access& access);
Decision decide(const PhysicalMemory& memory, const CpuState& state, const Access& access);

// The decision as the existing Outcome: ad_updates (translation) and may_set_accessed
// (#PF) filled from the entries, the #GP's reason worded as walk() words it.
Outcome to_outcome(const Decision& decision);

}  // namespace pagelab::paging

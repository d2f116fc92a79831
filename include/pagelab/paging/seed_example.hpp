#pragma once
// The worked example from the design documents, ready to explain or to test against:
// CR3 -> L4, L4[1] -> L3 at 0x4000, L3[0] -> L2 at 0x6000, L2[511] -> L1,
// L1[127] -> frame 0xC000 (so 0x803FE7F5CE -> 0xc5ce) and L1[0] -> another frame
// (0x803FE00000 mapped too). For 5-level, PML5[0] -> the same hierarchy.
#include <cstdint>

#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::paging {

struct SeedExample {
  static constexpr std::uint64_t Address = 0x803FE7F5CE;
  static constexpr std::uint64_t Physical = 0xC5CE;
  static constexpr std::uint64_t Pml4 = 0x1000;
  static constexpr std::uint64_t Pdpt = 0x4000;
  static constexpr std::uint64_t Pd = 0x6000;
  static constexpr std::uint64_t Pt = 0x8000;
  static constexpr std::uint64_t Pml5 = 0x9000;
  static constexpr std::uint64_t Frame = 0xC000;        // L1[127]
  static constexpr std::uint64_t SecondFrame = 0xD000;  // L1[0], for 0x803FE00000
  static constexpr std::uint64_t MemoryBytes = 0x10000;
  BufferMemory memory{MemoryBytes};
  CpuState state;
};

// mode: Level4 or Level5 (throws std::invalid_argument otherwise).
SeedExample make_seed_example(PagingMode mode = PagingMode::Level4);

}  // namespace pagelab::paging

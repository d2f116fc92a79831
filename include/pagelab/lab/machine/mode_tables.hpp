#pragma once
// Page tables that identity-map guest RAM in each paging mode, built with the paging
// model's builder in the guest's own memory, so the probe keeps running at the same
// addresses whatever mode it switches to.
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::lab {

struct ModeTables {
  paging::GuestPhys bits32, pae, level4, level5;  // CR3 values (GuestPhys(0) if not built)
};

// Identity-maps [0, ram_bytes) in every mode the features allow, with the largest page
// each mode offers (4 MiB with PSE, else 4 KiB; 2 MiB otherwise), tables taken from
// `frames`.
ModeTables build_mode_tables(paging::PhysicalMemory& memory, paging::FrameAllocator& frames,
                             std::uint64_t ram_bytes, const paging::CpuFeatures& features);

}  // namespace pagelab::lab

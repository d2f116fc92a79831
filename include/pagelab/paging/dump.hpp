#pragma once
// Dumps of the hierarchy under state.cr3: a Linux ptdump-like range list and a
// Graphviz DOT picture of the tree.
#include <string>

#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::paging {

// One line per run of contiguous linear pages with equal effective attributes and
// size, physically contiguous, e.g.
//   0x0000000000200000-0x0000000000400000  2M  pa 0x200000  RW x  USR  A D   1 x 2M
// Format: "VA_START-VA_END  SIZE  pa PA  RW|ro  NX|x  USR|SUP [G] [A] [D]  COUNT x SIZE".
std::string dump_text(const PhysicalMemory& memory, const CpuState& state);
// digraph with one node per table (named by level and address) and one edge per
// present entry, labelled with its index; leaves point at "page" nodes.
std::string dump_dot(const PhysicalMemory& memory, const CpuState& state);

}  // namespace pagelab::paging

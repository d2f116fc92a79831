#pragma once
// A text format for page tables taken elsewhere, so `pagelab explain --tables FILE`
// can explain them:
//
//   # comments start with '#'; blank lines are ignored
//   mode 4                 # optional: 32 | pae | 4 | 5 (default: the caller's)
//   cr3 0x1000             # required
//   cr0 0x80010001         # optional control registers: cr0 cr4 efer rflags pkru
//   0x1008 0x4003          # one entry per line: physical address, value
//   0x4000 0x6003 32       # optional width 32 for 32-bit paging entries (default 64)
//
// Numbers are hex with 0x, binary with 0b, or decimal; '_' separators allowed.
// Entries must be naturally aligned.
#include <cstdint>
#include <optional>
#include <string>

#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::paging {

struct TablesFile {
  SparseMemory memory;
  std::optional<PagingMode> mode;
  std::uint64_t cr3 = 0;
  std::optional<std::uint64_t> cr0, cr4, efer, rflags;
  std::optional<std::uint32_t> pkru;
};

// Throws std::invalid_argument, "SOURCE:LINE:COL: message", on malformed input.
TablesFile parse_tables_text(const std::string& text, const std::string& source = "tables");
// Parses "32", "pae", "4", "5" (also "none", "2", "3", "level4"...); nothing otherwise.
std::optional<PagingMode> parse_mode_name(const std::string& name);

// A CpuState for a file: make_cpu_state(mode, cr3, features) then the file's registers
// override; PAE PDPTEs loaded (a #GP from reserved PDPTE bits throws
// std::invalid_argument).
CpuState state_for(const TablesFile& file, PagingMode mode, CpuFeatures features = {});

}  // namespace pagelab::paging

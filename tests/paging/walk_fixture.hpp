#pragma once
// Shared setup for the walker tests: 1 MiB of memory, table frames from its upper half.
#include <gtest/gtest.h>

#include <variant>

#include "pagelab/paging/page_table_builder.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::paging::test {

inline constexpr std::uint64_t MemoryBytes = 0x100000;
inline constexpr std::uint64_t TablesFrom = 0x80000;

struct World {
  World(PagingMode mode, CpuFeatures features = {})
      : frames(GuestPhys(TablesFrom), GuestPhys(MemoryBytes)),
        builder(memory, frames, mode, features),
        state(make_cpu_state(mode, builder.root(), features)) {}
  Walk run(std::uint64_t va, AccessType type = AccessType::Read,
           Privilege privilege = Privilege::Supervisor, bool implicit = false) {
    return walk(memory, state, Access{Linear(va), type, privilege, implicit});
  }
  void reload_pdptes() {
    auto gp = load_pdptes(memory, state);
    ASSERT_FALSE(gp.has_value()) << gp->reason;
  }
  BufferMemory memory{MemoryBytes};
  FrameAllocator frames;
  PageTableBuilder builder;
  CpuState state;
};

inline const Translation* translation(const Walk& w) {
  return std::get_if<Translation>(&w.outcome);
}
inline const PageFault* page_fault(const Walk& w) {
  return std::get_if<PageFault>(&w.outcome);
}
inline bool general_protection(const Walk& w) {
  return std::holds_alternative<GeneralProtection>(w.outcome);
}

// The error code of a #PF outcome, or a value no error code can have.
inline std::uint32_t error_code(const Walk& w) {
  const PageFault* pf = page_fault(w);
  return pf != nullptr ? pf->error_code : 0xFFFF'FFFFu;
}

}  // namespace pagelab::paging::test

#pragma once
// The CPU state that decides how a linear address is translated: control registers,
// RFLAGS.AC, PKRU, the PAE PDPTE registers, and which paging features the CPU has.
#include <array>
#include <cstdint>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::paging {

struct CpuFeatures {
  unsigned maxphyaddr = 48;
  unsigned linear_bits = 48;
  bool pse = true, pse36 = true, pae = true, pge = true, nx = true, page1g = false, pcid = false,
       smep = false, smap = false, pku = false, la57 = false;
  // AMD's rules where the APM and the SDM differ (CPUID vendor AuthenticAMD or
  // HygonGenuine): bit 8 of a PML4E or PML5E is reserved (APM vol. 2 §5.3.3), where
  // Intel ignores it.
  bool amd = false;
  bool operator==(const CpuFeatures&) const = default;
};

struct CpuState {
  std::uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0, rflags = 0;
  std::uint32_t pkru = 0;
  // Legacy-PAE PDPTE registers, filled by load_pdptes() (walker.hpp) as MOV CR3 does.
  std::array<std::uint64_t, 4> pdptes{};
  CpuFeatures features;
  bool operator==(const CpuState&) const = default;
  [[nodiscard]] PagingMode mode() const { return paging_mode_of(cr0, cr4, efer); }
  // Physical address of the top-level table (the PDPT for PAE) from CR3.
  [[nodiscard]] GuestPhys root() const;
};

// A typical OS state for `mode` with its top-level table at `root`: CR0.PE|PG|WP,
// CR4.PSE (32-bit, when the CPU has it), CR4.PAE, EFER.LME|LMA, EFER.NXE (when the CPU
// has NX, PAE and up), CR4.LA57 (5-level), RFLAGS bit 1. For PAE, call load_pdptes()
// afterwards. Other bits (SMEP, SMAP, PKE, PGE) are left for the caller.
CpuState make_cpu_state(PagingMode mode, GuestPhys root, CpuFeatures features = {});

}  // namespace pagelab::paging

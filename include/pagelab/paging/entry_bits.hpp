#pragma once
// Named bits of paging-structure entries (Intel SDM vol. 3 §4.3–4.5 tables 4-4..4-20,
// AMD APM vol. 2 §5.3–5.4), of PKRU (SDM §4.6.2) and of the #PF error code (SDM §4.7).
// Logic uses these names, never bare masks.
#include <cstdint>

#include "pagelab/paging/bits.hpp"

namespace pagelab::paging {

// Entries of PAE, 4-level and 5-level paging (64-bit entries). Which bits mean what
// depends on the level and on whether the entry is a leaf; entry_format.hpp knows that.
struct Pte {
  static constexpr std::uint64_t Present = bit(0);
  static constexpr std::uint64_t Writable = bit(1);
  static constexpr std::uint64_t User = bit(2);
  static constexpr std::uint64_t Pwt = bit(3);
  static constexpr std::uint64_t Pcd = bit(4);
  static constexpr std::uint64_t Accessed = bit(5);
  static constexpr std::uint64_t Dirty = bit(6);  // leaves only
  // Bit 7 is PS in PDPTEs/PDEs (and reserved in PML4Es/PML5Es) but PAT in a 4 KiB PTE.
  static constexpr std::uint64_t PageSize = bit(7);
  static constexpr std::uint64_t Pat = bit(7);
  static constexpr std::uint64_t Global = bit(8);  // leaves only, with CR4.PGE
  static constexpr std::uint64_t Available = bits(9, 11);
  // PAT of a 2 MiB / 1 GiB / 4 MiB leaf: bit 7 is PS there, so PAT moves to bit 12.
  static constexpr std::uint64_t LargePat = bit(12);
  static constexpr unsigned FrameShift = 12;
  static constexpr unsigned HighAvailableLo = 52;
  static constexpr unsigned HighAvailableHi = 58;
  static constexpr unsigned ProtectionKeyShift = 59;  // leaves of 4/5-level paging, CR4.PKE
  static constexpr std::uint64_t ProtectionKey = bits(59, 62);
  static constexpr std::uint64_t NoExecute = bit(63);  // with EFER.NXE; reserved otherwise
  // Architectural maximum for the address fields of 64-bit entries.
  static constexpr unsigned MaxPhysBits = 52;
};

// 32-bit paging entries (SDM tables 4-4..4-6). Same low 9 bits as Pte; no NX, no PK.
struct Pte32 {
  static constexpr std::uint32_t Present = bit(0);
  static constexpr std::uint32_t Writable = bit(1);
  static constexpr std::uint32_t User = bit(2);
  static constexpr std::uint32_t Pwt = bit(3);
  static constexpr std::uint32_t Pcd = bit(4);
  static constexpr std::uint32_t Accessed = bit(5);
  static constexpr std::uint32_t Dirty = bit(6);
  static constexpr std::uint32_t PageSize = bit(7);  // PDE, honoured only with CR4.PSE
  static constexpr std::uint32_t Pat = bit(7);       // 4 KiB PTE
  static constexpr std::uint32_t Global = bit(8);
  static constexpr std::uint32_t LargePat = bit(12);  // 4 MiB PDE
  static constexpr std::uint32_t Frame4K = bits(12, 31);
  static constexpr std::uint32_t Frame4M = bits(22, 31);
  // PSE-36: a 4 MiB PDE's bits (M-20):13 hold physical bits (M-1):32, where
  // M = min(MAXPHYADDR, 40); bits 21:(M-19) are reserved (SDM table 4-4).
  static constexpr unsigned Pse36Lo = 13;
  static constexpr unsigned Pse36PhysShift = 32;
  static constexpr unsigned Pse36ReservedHi = 21;
  static constexpr unsigned Pse36MaxPhysBits = 40;
};

// A legacy-PAE PDPTE, loaded into a register at MOV CR3 (SDM table 4-8). It has no
// R/W, U/S, A, D or NX; bits 2:1, 8:5 and 63:MAXPHYADDR are reserved.
struct PaePdpte {
  static constexpr std::uint64_t Present = bit(0);
  static constexpr std::uint64_t ReservedLow = bits(1, 2);
  static constexpr std::uint64_t Pwt = bit(3);
  static constexpr std::uint64_t Pcd = bit(4);
  static constexpr std::uint64_t ReservedMid = bits(5, 8);
  static constexpr std::uint64_t Ignored = bits(9, 11);
  static constexpr unsigned Count = 4;
};

// Protection-key rights register: 16 keys, two bits each (SDM §4.6.2).
struct Pkru {
  static constexpr unsigned Keys = 16;
  static constexpr std::uint32_t access_disable(unsigned key) {
    return static_cast<std::uint32_t>(bit(2 * key));
  }
  static constexpr std::uint32_t write_disable(unsigned key) {
    return static_cast<std::uint32_t>(bit(2 * key + 1));
  }
};

// The #PF error code (SDM §4.7, figure 4-12).
struct PfError {
  static constexpr std::uint32_t P = bit(0);     // 1: protection violation (incl. RSVD)
  static constexpr std::uint32_t W = bit(1);     // 1: write access
  static constexpr std::uint32_t U = bit(2);     // 1: user-mode access (CPL 3, explicit)
  static constexpr std::uint32_t Rsvd = bit(3);  // 1: reserved bit set in some entry
  static constexpr std::uint32_t I = bit(4);     // 1: fetch, only when NXE (PAE+) or SMEP
  static constexpr std::uint32_t Pk = bit(5);    // 1: protection-key violation
};

}  // namespace pagelab::paging

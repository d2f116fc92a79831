#pragma once
// What one access does, as plain values: the decision half of the oracle (walk_core.hpp
// computes it; walker.hpp adds the explanation). No strings and no heap, so a judge can
// afford millions of them per second.
#include <array>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::paging {

// Memory the decision walk reads entries from: `bytes` is 4 (32-bit paging) or 8,
// little-endian, naturally aligned; outside the memory it throws std::out_of_range.
template <class M>
concept PagingMemory = requires(const M& m, GuestPhys at, unsigned bytes) {
  { m.read(at, bytes) } -> std::same_as<std::uint64_t>;
};

[[noreturn]] void throw_outside_flat_memory(GuestPhys at, unsigned bytes, std::uint64_t size);

// A flat, read-only view of guest-physical memory starting at GPA 0 (guest RAM as the
// host maps it). Does not own the bytes.
struct FlatMemory {
  const std::uint8_t* base = nullptr;
  std::uint64_t size = 0;
  [[nodiscard]] std::uint64_t read(GuestPhys at, unsigned bytes) const {
    const std::uint64_t a = at.value();
    if (a > size || size - a < bytes) throw_outside_flat_memory(at, bytes, size);
    if (bytes == sizeof(std::uint32_t)) {
      std::uint32_t v = 0;
      std::memcpy(&v, base + a, sizeof v);  // x86 host: little-endian
      return v;
    }
    std::uint64_t v = 0;
    std::memcpy(&v, base + a, sizeof v);
    return v;
  }
};

struct DecidedEntry {
  GuestPhys address;  // for a PAE PDPTE: where MOV CR3 loaded it from
  std::uint64_t value = 0;
  unsigned level = 0;
  bool pdpte_register = false;  // a PAE PDPTE: read from the register, never gets A
  bool operator==(const DecidedEntry&) const = default;
};

struct Decision {
  Decision() {}  // NOLINT(modernize-use-equals-default): leaves `entries` unset, below
  enum class Kind : std::uint8_t { Translation, PageFault, GeneralProtection };
  Kind kind = Kind::Translation;
  std::uint32_t error_code = 0;  // #PF / #GP error code
  Linear address;                // the access's linear address; CR2 for #PF
  // A translation's result. The rights are also filled on a permission #PF (effective
  // over all levels); on other faults they cover the levels walked so far.
  GuestPhys physical;
  Linear page_base;
  GuestPhys frame;
  PageSize page_size = PageSize::Size4K;
  bool writable = true, user = true, executable = true, global = false;
  unsigned protection_key = 0;
  // Every entry the walk read, top first; on a #PF the last one is the entry that faulted
  // (the leaf, for a permission fault). Only the first entry_count are set: the walk
  // makes a Decision per access, and zeroing all five cost a quarter of a 4-level walk.
  union {
    std::array<DecidedEntry, 5> entries;
  };
  unsigned entry_count = 0;
  // A/D bits the access sets: on a translation, A on every non-register entry and D on
  // the leaf when `write`; on a #PF, the non-register entries before the last MAY get A.
  bool write = false;
  // For a #GP: the linear-address width of the mode, whose canonical rule the address broke.
  unsigned linear_width = 0;
  // Equal decisions: the same fields and the same entries read (those that are set).
  bool operator==(const Decision& o) const {
    if (kind != o.kind || error_code != o.error_code || address != o.address ||
        physical != o.physical || page_base != o.page_base || frame != o.frame ||
        page_size != o.page_size || writable != o.writable || user != o.user ||
        executable != o.executable || global != o.global || protection_key != o.protection_key ||
        entry_count != o.entry_count || write != o.write || linear_width != o.linear_width) {
      return false;
    }
    for (unsigned i = 0; i < entry_count; ++i) {
      if (!(entries[i] == o.entries[i])) return false;
    }
    return true;
  }
};

}  // namespace pagelab::paging

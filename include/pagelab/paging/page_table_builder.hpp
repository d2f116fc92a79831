#pragma once
// Builds and edits page tables of any mode in a PhysicalMemory, taking table frames
// from a FrameAllocator. Every change is checked against the architecture (alignment,
// page sizes the mode and CPU allow) and throws std::invalid_argument with the reason.
#include <cstdint>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::paging {

class PageTableBuilder {
 public:
  // Allocates and zeroes the root table (for PAE: a whole 4 KiB frame holding the
  // 32-byte PDPT at its start). Mode None is rejected.
  PageTableBuilder(PhysicalMemory& memory, FrameAllocator& frames, PagingMode mode,
                   CpuFeatures features = {});
  // Adopts an existing hierarchy rooted at `root`.
  PageTableBuilder(PhysicalMemory& memory, FrameAllocator& frames, PagingMode mode,
                   CpuFeatures features, GuestPhys root);

  // What CR3 points at (PAE: the PDPT, 32-byte aligned).
  [[nodiscard]] GuestPhys root() const { return root_; }
  [[nodiscard]] PagingMode mode() const { return mode_; }
  [[nodiscard]] const CpuFeatures& features() const { return features_; }

  // Maps [va, va+length) to [pa, pa+length) with pages of `size`. `leaf_flags` are
  // Pte:: bits (Present is implied; PS is set by the builder for huge pages; for a huge
  // page pass Pte::LargePat, not Pte::Pat). Intermediate entries are created with
  // P|RW|US so the leaves alone decide permissions; existing ones are kept. Mapping over
  // an existing leaf of another size throws (split or unmap first).
  void map(Linear va, GuestPhys pa, std::uint64_t length, PageSize size, std::uint64_t leaf_flags);
  // Clears the leaves covering [va, va+length); the range must not cut a huge page.
  void unmap(Linear va, std::uint64_t length);
  // Sets then clears bits in every leaf covering [va, va+length).
  void protect(Linear va, std::uint64_t length, std::uint64_t set_flags, std::uint64_t clear_flags);
  // Replaces the huge leaf covering `va` with a table of next-smaller pages with the
  // same attributes (PAT moves between bit 12 and bit 7).
  void split(Linear va);
  // Replaces the table covering the `size`-aligned region around `va` with one `size`
  // leaf, if all its entries are present leaves of the next size with contiguous frames
  // and equal attributes; returns false (and changes nothing) otherwise.
  bool merge(Linear va, PageSize size);
  // Points top-level entry `top_index` at the top-level table itself (P|RW, supervisor).
  // Not available in PAE mode (its top level is four registers).
  void set_recursive(unsigned top_index);
  // Physical address of the entry at `level` that translates `va`; throws
  // std::invalid_argument if the walk stops above that level (absent or leaf).
  GuestPhys entry_address(Linear va, unsigned level) const;
  // Reads / writes that entry directly (for experiments that poke at raw entries).
  std::uint64_t read_entry(Linear va, unsigned level) const;
  void write_entry(Linear va, unsigned level, std::uint64_t value);

 private:
  std::uint64_t read(GuestPhys a) const;
  void write(GuestPhys a, std::uint64_t v);
  GuestPhys new_table();
  GuestPhys table_of(std::uint64_t entry, unsigned level) const;
  GuestPhys slot(GuestPhys table, unsigned level, Linear va) const;
  GuestPhys ensure_path(Linear va, unsigned leaf_lvl);
  std::uint64_t make_pointer(GuestPhys table, unsigned level) const;
  bool is_leaf(std::uint64_t entry, unsigned level) const;
  void for_each_leaf(Linear va, std::uint64_t length, bool clear, std::uint64_t set_flags,
                     std::uint64_t clear_flags);

  PhysicalMemory& memory_;
  FrameAllocator& frames_;
  PagingMode mode_;
  CpuFeatures features_;
  GuestPhys root_;
};

}  // namespace pagelab::paging

#include "pagelab/lab/machine/mode_tables.hpp"

#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/page_table_builder.hpp"

namespace pagelab::lab {

using paging::GuestPhys;
using paging::Linear;
using paging::PageSize;
using paging::PagingMode;

namespace {

GuestPhys identity(paging::PhysicalMemory& memory, paging::FrameAllocator& frames, PagingMode mode,
                   PageSize size, std::uint64_t ram_bytes, const paging::CpuFeatures& features) {
  paging::PageTableBuilder builder(memory, frames, mode, features);
  const auto page = paging::page_bytes(size);
  const auto length = (ram_bytes + page - 1) / page * page;
  builder.map(Linear(0), GuestPhys(0), length, size, paging::Pte::Writable);
  return builder.root();
}

}  // namespace

ModeTables build_mode_tables(paging::PhysicalMemory& memory, paging::FrameAllocator& frames,
                             std::uint64_t ram_bytes, const paging::CpuFeatures& features) {
  ModeTables t;
  t.bits32 = identity(memory, frames, PagingMode::Bits32,
                      features.pse ? PageSize::Size4M : PageSize::Size4K, ram_bytes, features);
  t.pae = identity(memory, frames, PagingMode::Pae, PageSize::Size2M, ram_bytes, features);
  t.level4 = identity(memory, frames, PagingMode::Level4, PageSize::Size2M, ram_bytes, features);
  // The 5-level tables are built even without LA57, so a platform that refuses the
  // mode is asked with a valid hierarchy and refuses for the right reason.
  auto with_la57 = features;
  with_la57.la57 = true;
  t.level5 = identity(memory, frames, PagingMode::Level5, PageSize::Size2M, ram_bytes, with_la57);
  return t;
}

}  // namespace pagelab::lab

#include "pagelab/paging/seed_example.hpp"

#include <stdexcept>

#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::paging {

SeedExample make_seed_example(PagingMode mode) {
  if (mode != PagingMode::Level4 && mode != PagingMode::Level5) {
    throw std::invalid_argument(
        "the built-in example exists for 4-level and 5-level paging only; pass page tables "
        "for other modes");
  }
  SeedExample seed;
  auto& m = seed.memory;
  const std::uint64_t table = Pte::Present | Pte::Writable | Pte::User;
  auto put = [&](std::uint64_t table_base, unsigned index, std::uint64_t value) {
    m.write64(GuestPhys(table_base + index * sizeof(std::uint64_t)), value);
  };
  put(SeedExample::Pml4, 1, SeedExample::Pdpt | table);
  put(SeedExample::Pdpt, 0, SeedExample::Pd | table);
  put(SeedExample::Pd, 511, SeedExample::Pt | table);
  put(SeedExample::Pt, 127, SeedExample::Frame | table);
  put(SeedExample::Pt, 0, SeedExample::SecondFrame | table);
  CpuFeatures features;
  GuestPhys root(SeedExample::Pml4);
  if (mode == PagingMode::Level5) {
    features.la57 = true;
    features.linear_bits = 57;
    put(SeedExample::Pml5, 0, SeedExample::Pml4 | table);
    root = GuestPhys(SeedExample::Pml5);
  }
  seed.state = make_cpu_state(mode, root, features);
  return seed;
}

}  // namespace pagelab::paging

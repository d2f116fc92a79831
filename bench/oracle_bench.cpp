// The oracle's cost per access: a 4-level walk over tables in a BufferMemory, for a
// translation and for each kind of fault. `pagelab bench` reports the oracle's share
// of a checked run; this isolates the walker.
#include <benchmark/benchmark.h>

#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/page_table_builder.hpp"
#include "pagelab/paging/walker.hpp"

namespace {

using namespace pagelab::paging;

struct Tables {
  BufferMemory memory{8 << 20};
  FrameAllocator frames{GuestPhys(0x100000), GuestPhys(0x400000)};
  PageTableBuilder builder{memory, frames, PagingMode::Level4};
  CpuState state;
  Tables() {
    builder.map(Linear(0x40000000), GuestPhys(0x400000), 0x10000, PageSize::Size4K,
                Pte::User | Pte::Writable);
    builder.map(Linear(0x40010000), GuestPhys(0x410000), 0x1000, PageSize::Size4K, Pte::User);
    builder.map(Linear(0x40200000), GuestPhys(0x600000), 0x200000, PageSize::Size2M, Pte::Writable);
    state = make_cpu_state(PagingMode::Level4, builder.root());
  }
};

void run(benchmark::State& st, Linear va, AccessType type, Privilege priv) {
  Tables t;
  Access a;
  a.address = va;
  a.type = type;
  a.privilege = priv;
  for (auto _ : st) benchmark::DoNotOptimize(walk(t.memory, t.state, a));
  st.SetItemsProcessed(st.iterations());
}

void BM_WalkTranslation4K(benchmark::State& st) {
  run(st, Linear(0x40001008), AccessType::Read, Privilege::User);
}
void BM_WalkTranslation2M(benchmark::State& st) {
  run(st, Linear(0x40212345), AccessType::Write, Privilege::Supervisor);
}
void BM_WalkFaultReadOnly(benchmark::State& st) {
  run(st, Linear(0x40010000), AccessType::Write, Privilege::User);
}
void BM_WalkFaultNotPresent(benchmark::State& st) {
  run(st, Linear(0x7f0000000000), AccessType::Read, Privilege::User);
}
void BM_WalkNonCanonical(benchmark::State& st) {
  run(st, Linear(0x0000800000000000), AccessType::Read, Privilege::User);
}

void BM_AllowedOutcomes(benchmark::State& st) {
  Tables t;
  Access a;
  a.address = Linear(0x40001008);
  for (auto _ : st) benchmark::DoNotOptimize(allowed_outcomes(t.memory, t.state, a));
  st.SetItemsProcessed(st.iterations());
}

}  // namespace

BENCHMARK(BM_WalkTranslation4K);
BENCHMARK(BM_WalkTranslation2M);
BENCHMARK(BM_WalkFaultReadOnly);
BENCHMARK(BM_WalkFaultNotPresent);
BENCHMARK(BM_WalkNonCanonical);
BENCHMARK(BM_AllowedOutcomes);

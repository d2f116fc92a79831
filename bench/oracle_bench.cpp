// The oracle's cost per access, both halves side by side in one run: BM_Walk* run the
// explaining walk() (names, meanings, fault reasons; what `explain` prints) over a
// BufferMemory, BM_Decide* run decide() (the same rules, no text, no heap) over a
// FlatMemory view of the same bytes. `pagelab bench` reports the oracle's share of a
// checked run; this isolates the walker.
#include <benchmark/benchmark.h>

#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/decide.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/page_table_builder.hpp"
#include "pagelab/paging/walker.hpp"

namespace {

using namespace pagelab::paging;

struct Tables {
  explicit Tables(PagingMode mode = PagingMode::Level4)
      : builder{memory, frames, mode, features_of(mode)} {
    builder.map(Linear(0x40000000), GuestPhys(0x400000), 0x10000, PageSize::Size4K,
                Pte::User | Pte::Writable);
    builder.map(Linear(0x40010000), GuestPhys(0x410000), 0x1000, PageSize::Size4K, Pte::User);
    builder.map(Linear(0x40200000), GuestPhys(0x600000), 0x200000, PageSize::Size2M, Pte::Writable);
    state = make_cpu_state(mode, builder.root(), features_of(mode));
  }
  static CpuFeatures features_of(PagingMode mode) {
    CpuFeatures f;
    f.la57 = mode == PagingMode::Level5;
    return f;
  }
  [[nodiscard]] FlatMemory flat() const {
    return FlatMemory{memory.bytes().data(), memory.bytes().size()};
  }
  BufferMemory memory{8 << 20};
  FrameAllocator frames{GuestPhys(0x100000), GuestPhys(0x400000)};
  PageTableBuilder builder;
  CpuState state;
};

Access access_of(Linear va, AccessType type, Privilege priv) {
  Access a;
  a.address = va;
  a.type = type;
  a.privilege = priv;
  return a;
}

void run_walk(benchmark::State& st, Linear va, AccessType type, Privilege priv) {
  const Tables t;
  const Access a = access_of(va, type, priv);
  for (auto _ : st) benchmark::DoNotOptimize(walk(t.memory, t.state, a));
  st.SetItemsProcessed(st.iterations());
}

void run_decide(benchmark::State& st, Linear va, AccessType type, Privilege priv,
                PagingMode mode = PagingMode::Level4) {
  const Tables t(mode);
  const FlatMemory flat = t.flat();
  const Access a = access_of(va, type, priv);
  for (auto _ : st) benchmark::DoNotOptimize(decide(flat, t.state, a));
  st.SetItemsProcessed(st.iterations());
}

// The explaining walk (before: what every judge ran).
void BM_WalkTranslation4K(benchmark::State& st) {
  run_walk(st, Linear(0x40001008), AccessType::Read, Privilege::User);
}
void BM_WalkTranslation2M(benchmark::State& st) {
  run_walk(st, Linear(0x40212345), AccessType::Write, Privilege::Supervisor);
}
void BM_WalkFaultReadOnly(benchmark::State& st) {
  run_walk(st, Linear(0x40010000), AccessType::Write, Privilege::User);
}
void BM_WalkFaultNotPresent(benchmark::State& st) {
  run_walk(st, Linear(0x7f0000000000), AccessType::Read, Privilege::User);
}
void BM_WalkNonCanonical(benchmark::State& st) {
  run_walk(st, Linear(0x0000800000000000), AccessType::Read, Privilege::User);
}

void BM_AllowedOutcomes(benchmark::State& st) {
  const Tables t;
  Access a;
  a.address = Linear(0x40001008);
  for (auto _ : st) benchmark::DoNotOptimize(allowed_outcomes(t.memory, t.state, a));
  st.SetItemsProcessed(st.iterations());
}

// The decision alone (after), over a flat view of the same memory.
void BM_DecideTranslation4K(benchmark::State& st) {
  run_decide(st, Linear(0x40001008), AccessType::Read, Privilege::User);
}
void BM_DecideTranslation2M(benchmark::State& st) {
  run_decide(st, Linear(0x40212345), AccessType::Write, Privilege::Supervisor);
}
void BM_DecideFaultReadOnly(benchmark::State& st) {
  run_decide(st, Linear(0x40010000), AccessType::Write, Privilege::User);
}
void BM_DecideFaultNotPresent(benchmark::State& st) {
  run_decide(st, Linear(0x7f0000000000), AccessType::Read, Privilege::User);
}
void BM_DecideNonCanonical(benchmark::State& st) {
  run_decide(st, Linear(0x0000800000000000), AccessType::Read, Privilege::User);
}
void BM_DecideTranslation4K5Level(benchmark::State& st) {
  run_decide(st, Linear(0x40001008), AccessType::Read, Privilege::User, PagingMode::Level5);
}

// decide() through the PhysicalMemory adapter (virtual reads), and with the Outcome built
// as walk() returns it (the vector of A/D updates is the only allocation).
void BM_DecidePhysicalMemory4K(benchmark::State& st) {
  const Tables t;
  const Access a = access_of(Linear(0x40001008), AccessType::Read, Privilege::User);
  for (auto _ : st) benchmark::DoNotOptimize(decide(t.memory, t.state, a));
  st.SetItemsProcessed(st.iterations());
}
void BM_DecideToOutcome4K(benchmark::State& st) {
  const Tables t;
  const FlatMemory flat = t.flat();
  const Access a = access_of(Linear(0x40001008), AccessType::Read, Privilege::User);
  for (auto _ : st) benchmark::DoNotOptimize(to_outcome(decide(flat, t.state, a)));
  st.SetItemsProcessed(st.iterations());
}

}  // namespace

BENCHMARK(BM_WalkTranslation4K);
BENCHMARK(BM_DecideTranslation4K);
BENCHMARK(BM_WalkTranslation2M);
BENCHMARK(BM_DecideTranslation2M);
BENCHMARK(BM_WalkFaultReadOnly);
BENCHMARK(BM_DecideFaultReadOnly);
BENCHMARK(BM_WalkFaultNotPresent);
BENCHMARK(BM_DecideFaultNotPresent);
BENCHMARK(BM_WalkNonCanonical);
BENCHMARK(BM_DecideNonCanonical);
BENCHMARK(BM_AllowedOutcomes);
BENCHMARK(BM_DecideTranslation4K5Level);
BENCHMARK(BM_DecidePhysicalMemory4K);
BENCHMARK(BM_DecideToOutcome4K);

// The judge's cost per access: the full check of one access (the walk, what the
// translation caches may still answer, the A/D bits and the data it moves forward),
// and how that cost behaves as the history of changes without invalidation grows
// (issue "Nothing lost, nothing silent", item 13: flat, <= 2x from 100 to 10,000).
#include <benchmark/benchmark.h>

#include "pagelab/lab/judge/judge.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/page_table_builder.hpp"

namespace {

using namespace pagelab;
using paging::GuestPhys;
using paging::Linear;
using paging::Pte;

constexpr std::uint64_t Va = 0x40000000;
constexpr std::uint64_t FrameA = 0x200000, FrameB = 0x201000;

struct World {
  paging::BufferMemory memory{8 << 20};
  paging::FrameAllocator frames{GuestPhys(0x300000), GuestPhys(0x400000)};
  paging::PageTableBuilder builder{memory, frames, paging::PagingMode::Level4};
  lab::judge::Judge judge{memory,
                          paging::make_cpu_state(paging::PagingMode::Level4, builder.root())};
  GuestPhys leaf;
  World() {
    builder.map(Linear(Va), GuestPhys(FrameA), 0x1000, paging::PageSize::Size4K, Pte::Writable);
    judge.reset(judge.state());
    judge.write_cr4(judge.state().cr4 | paging::Cr4::Pge);
    leaf = builder.entry_address(Linear(Va), 1);
  }
  // As the engine checks an access: into a judgement whose storage is reused.
  lab::judge::Judgement j;
  void check(const paging::Access& a, lab::judge::Explain explain = lab::judge::Explain::No) {
    judge.judge(a, false, explain, j);
    lab::judge::Observed ok{lab::judge::Observed::Kind::Ok, 0, 0, 0, j.allowed.front().value};
    benchmark::DoNotOptimize(judge.commit(a, false, 0, j, &ok));
  }
};

paging::Access read_at(std::uint64_t va) {
  paging::Access a;
  a.address = Linear(va);
  a.size = 8;
  return a;
}

// One access judged and committed, nothing stale.
void BM_JudgeCheckAccess(benchmark::State& st) {
  World w;
  const auto a = read_at(Va + 0x10);
  for (auto _ : st) w.check(a);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_JudgeCheckAccess);

// The same with every walk explained (names, meanings): what printing costs.
void BM_JudgeCheckAccessExplained(benchmark::State& st) {
  World w;
  const auto a = read_at(Va + 0x10);
  for (auto _ : st) w.check(a, lab::judge::Explain::Yes);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_JudgeCheckAccessExplained);

// The workload: a global page read, then its PTE flipped between two frames
// without invalidation, N times; the cost of one more read + flip after N of them.
void BM_JudgeHistoryFlip(benchmark::State& st) {
  World w;
  const auto a = read_at(Va);
  auto flip = [&](std::int64_t i) {
    const auto frame = (i % 2) == 0 ? FrameB : FrameA;
    w.judge.write_entry(w.leaf, frame | Pte::Present | Pte::Writable | Pte::Global);
  };
  for (std::int64_t i = 0; i < st.range(0); ++i) {
    w.check(a);
    flip(i);
  }
  std::int64_t i = 0;
  for (auto _ : st) {
    w.check(a);
    flip(i++);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_JudgeHistoryFlip)->Arg(100)->Arg(1000)->Arg(10000);

// The same with an INVLPG after each change.
void BM_JudgeHistoryFlipInvlpg(benchmark::State& st) {
  World w;
  const auto a = read_at(Va);
  auto flip = [&](std::int64_t i) {
    const auto frame = (i % 2) == 0 ? FrameB : FrameA;
    w.judge.write_entry(w.leaf, frame | Pte::Present | Pte::Writable | Pte::Global);
    w.judge.invlpg(Linear(Va));
  };
  for (std::int64_t i = 0; i < st.range(0); ++i) {
    w.check(a);
    flip(i);
  }
  std::int64_t i = 0;
  for (auto _ : st) {
    w.check(a);
    flip(i++);
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_JudgeHistoryFlipInvlpg)->Arg(100)->Arg(1000)->Arg(10000);

}  // namespace

// The one judge: what the translation caches may still answer after each kind of
// change and invalidation (SDM vol. 3A §4.10.2–4.10.4), and that its history stays
// bounded. Each expectation is read off the SDM's rules, not off a CPU.
#include "pagelab/lab/judge/judge.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/frame_allocator.hpp"
#include "pagelab/paging/page_table_builder.hpp"

namespace pagelab::lab::judge {
namespace {

using paging::AccessType;
using paging::GuestPhys;
using paging::Linear;
using paging::PageSize;
using paging::Privilege;
using paging::Pte;

constexpr std::uint64_t Va = 0x40000000, Va2 = 0x40001000;
constexpr std::uint64_t FrameA = 0x200000, FrameB = 0x210000;

struct World {
  paging::BufferMemory memory{8 << 20};
  paging::FrameAllocator frames{GuestPhys(0x300000), GuestPhys(0x400000)};
  paging::PageTableBuilder builder{memory, frames, paging::PagingMode::Level4};
  Judge judge{memory, paging::make_cpu_state(paging::PagingMode::Level4, builder.root())};

  World() {
    builder.map(Linear(Va), GuestPhys(FrameA), 0x2000, PageSize::Size4K, Pte::Writable | Pte::User);
    memory.write64(GuestPhys(FrameA), 0x1111);
    memory.write64(GuestPhys(FrameB), 0x2222);
    memory.write64(GuestPhys(FrameA + 0x1000), 0x3333);
    judge.reset(judge.state());
  }
  static paging::Access read(std::uint64_t va, Privilege p = Privilege::Supervisor) {
    paging::Access a;
    a.address = Linear(va);
    a.type = AccessType::Read;
    a.privilege = p;
    a.size = 8;
    return a;
  }
  // Judges and commits an access the way a CPU without caches would do it (fresh).
  Judgement access(const paging::Access& a) {
    auto j = judge.judge(a, false);
    judge.commit(a, false, 0, j, nullptr);
    return j;
  }
  [[nodiscard]] std::vector<std::uint64_t> values(const paging::Access& a) const {
    std::vector<std::uint64_t> out;
    for (const auto& x : judge.judge(a, false).allowed) {
      if (std::holds_alternative<paging::Translation>(x.outcome)) out.push_back(x.value);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  void remap_to_b(std::uint64_t va = Va) {
    const auto at = builder.entry_address(Linear(va), 1);
    judge.write_entry(at, FrameB | Pte::Present | Pte::Writable | Pte::User);
  }
  [[nodiscard]] bool faults(const paging::Access& a) const {
    const auto j = judge.judge(a, false);
    return std::any_of(j.allowed.begin(), j.allowed.end(), [](const Allowed& x) {
      return std::holds_alternative<paging::PageFault>(x.outcome);
    });
  }
};

using Values = std::vector<std::uint64_t>;

TEST(Judge, AnEntryChangedWithoutInvalidationAllowsOldAndNew) {
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
}

TEST(Judge, NothingIsStaleBeforeTheFirstAccess) {
  World w;
  w.remap_to_b();
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x2222}));
}

TEST(Judge, InvlpgDropsThePagesTranslation) {
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  w.judge.invlpg(Linear(Va));
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x2222}));
}

TEST(Judge, InvlpgOfAnotherPageKeepsThisPagesTranslation) {
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  w.judge.invlpg(Linear(Va2));
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
}

TEST(Judge, MovCr3DropsNonGlobalTranslations) {
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  EXPECT_FALSE(w.judge.write_cr3(w.judge.state().cr3));
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x2222}));
}

TEST(Judge, GlobalTranslationsSurviveMovCr3ButNotAPgeToggle) {
  World w;
  w.judge.write_cr4(w.judge.state().cr4 | paging::Cr4::Pge);
  const auto leaf = w.builder.entry_address(Linear(Va), 1);
  w.judge.write_entry(leaf, w.judge.read_entry(leaf) | Pte::Global);
  w.access(World::read(Va));
  w.judge.write_entry(leaf, FrameB | Pte::Present | Pte::Writable | Pte::User | Pte::Global);
  EXPECT_FALSE(w.judge.write_cr3(w.judge.state().cr3));
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
  w.judge.toggle_pge();
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x2222}));
}

TEST(Judge, CachedTranslationsOutliveAnEferWrite) {
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  w.judge.write_efer(w.judge.state().efer);  // WRMSR invalidates nothing (SDM §4.10.4.1)
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
}

TEST(Judge, APageFaultInvalidatesWhatTranslatedTheAddress) {
  World w;
  w.access(World::read(Va));
  const auto leaf = w.builder.entry_address(Linear(Va), 1);
  w.judge.write_entry(leaf, 0);  // not present, not invalidated: the old page may be used
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111}));
  EXPECT_TRUE(w.faults(World::read(Va)));
  // The CPU reports the #PF: that drops the stale translation (SDM §4.10.4.2).
  auto a = World::read(Va);
  auto j = w.judge.judge(a, false);
  Observed pf{Observed::Kind::Fault, 14, 0, Va, 0};
  EXPECT_TRUE(w.judge.commit(a, false, 0, j, &pf).agrees());
  EXPECT_TRUE(w.values(World::read(Va)).empty());
}

TEST(Judge, AStaleUpperEntryMayServeAnotherPageOfItsRegion) {
  World w;
  w.access(World::read(Va));  // caches PML4E, PDPTE and PDE for the region of Va
  // Clear U/S in the PDPTE: a supervisor page now, but the paging-structure caches may
  // still hold the user PDPTE for Va2, a page never accessed (SDM §4.10.3).
  const auto pdpte = w.builder.entry_address(Linear(Va), 3);
  w.judge.write_entry(pdpte, w.judge.read_entry(pdpte) & ~Pte::User);
  const auto user = World::read(Va2, Privilege::User);
  EXPECT_EQ(w.values(user), (Values{0x3333}));
  EXPECT_TRUE(w.faults(user));
  // INVLPG of any address empties the paging-structure caches.
  w.judge.invlpg(Linear(0x7000000));
  EXPECT_TRUE(w.values(user).empty());
}

TEST(Judge, TheIssueReproducerAllowsTheStaleUserTranslation) {
  // Supervisor read after INVLPG of the other page must not replace the user
  // translation the TLB may still hold for this page (issue "One case pipeline").
  World w;
  w.access(World::read(Va2, Privilege::User));
  const auto pdpte = w.builder.entry_address(Linear(Va), 3);
  w.judge.write_entry(pdpte, w.judge.read_entry(pdpte) & ~Pte::User);
  w.judge.invlpg(Linear(Va));
  auto sup = World::read(Va2);
  auto j = w.judge.judge(sup, false);
  Observed ok{Observed::Kind::Ok, 0, 0, 0, 0x3333};
  EXPECT_TRUE(w.judge.commit(sup, false, 0, j, &ok).agrees());
  EXPECT_EQ(w.values(World::read(Va2, Privilege::User)), (Values{0x3333}));
}

TEST(Judge, HistoryStaysBoundedWhenAnEntryFlipsWithoutInvalidation) {
  World w;
  w.judge.write_cr4(w.judge.state().cr4 | paging::Cr4::Pge);
  const auto leaf = w.builder.entry_address(Linear(Va), 1);
  w.judge.write_entry(leaf, FrameA | Pte::Present | Pte::Writable | Pte::Global);
  for (int i = 0; i < 2000; ++i) {
    w.access(World::read(Va));
    const auto frame = (i % 2) == 0 ? FrameB : FrameA;
    w.judge.write_entry(leaf, frame | Pte::Present | Pte::Writable | Pte::Global);
  }
  // Two translations ever existed for the page, plus the upper entries' items.
  EXPECT_LE(w.judge.caches().size(), 2u + 3u);
  EXPECT_EQ(w.values(World::read(Va)).size(), 2u);
}

}  // namespace
}  // namespace pagelab::lab::judge

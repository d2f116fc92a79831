// The one judge: what the translation caches may still answer after each kind of
// change and invalidation (SDM vol. 3A §4.10.2–4.10.4), and that its history stays
// bounded. Each expectation is read off the SDM's rules, not off a CPU.
#include "pagelab/lab/judge/judge.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "pagelab/lab/judge/access_deviations.hpp"
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
  // Va's translation cached, its PTE made not present without invalidation, then a user
  // read of Va faults: the #PF drops the cached translation. Returns the PTE's address.
  GuestPhys drop_by_user_fault() {
    access(read(Va));
    const auto leaf = builder.entry_address(Linear(Va), 1);
    judge.write_entry(leaf, 0);
    const auto user = read(Va, Privilege::User);
    const auto j = judge.judge(user, false);
    const Observed pf{Observed::Kind::Fault, 14, 0x4, Va, 0};
    EXPECT_TRUE(judge.commit(user, false, 0, j, &pf).agrees());
    return leaf;
  }
  // Va read (its region's PML4E, PDPTE and PDE cached), then U/S cleared in the PDPTE
  // without invalidation.
  void cache_then_make_pdpte_supervisor() {
    access(read(Va));
    const auto pdpte = builder.entry_address(Linear(Va), 3);
    judge.write_entry(pdpte, judge.read_entry(pdpte) & ~Pte::User);
  }
  [[nodiscard]] bool faults(const paging::Access& a) const {
    const auto j = judge.judge(a, false);
    return std::any_of(j.allowed.begin(), j.allowed.end(), [](const Allowed& x) {
      return std::holds_alternative<paging::PageFault>(x.outcome);
    });
  }
};

using Values = std::vector<std::uint64_t>;

// The outcomes a judgement allows, in a comparable form.
std::vector<std::string> outcome_kinds(const Judgement& j) {
  std::vector<std::string> out;
  for (const auto& a : j.allowed) {
    if (const auto* t = std::get_if<paging::Translation>(&a.outcome)) {
      out.push_back("ok " + std::to_string(t->physical.value()));
    } else if (const auto* pf = std::get_if<paging::PageFault>(&a.outcome)) {
      out.push_back("pf " + std::to_string(pf->error_code));
    } else {
      out.push_back("gp");
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// AMD reserves bit 8 of a PML4E, Intel ignores it (AMD APM vol. 2 §5.3.3; SDM table
// 4-15): the only entry the two vendors' walks treat apart, so a judgement whose walks
// met no such entry is what the other vendor's rules give too.
TEST(Judge, TheVendorsWalksDifferOnlyAtAnEntryTheirRulesTreatApart) {
  World w;
  auto amd = w.judge.state();
  amd.features.amd = true;
  w.judge.reset(amd);
  auto intel = amd;
  intel.features.amd = false;
  const auto a = World::read(Va);
  const auto plain = w.judge.judge_under(a, amd);
  EXPECT_FALSE(Judge::vendor_may_matter(plain, amd));
  EXPECT_EQ(outcome_kinds(plain), outcome_kinds(w.judge.judge_under(a, intel)));

  const auto pml4e = w.builder.entry_address(Linear(Va), 4);
  w.judge.write_entry(pml4e, w.judge.read_entry(pml4e) | Pte::Global);
  w.judge.invlpg(Linear(Va));
  const auto on_amd = w.judge.judge_under(a, amd);
  const auto on_intel = w.judge.judge_under(a, intel);
  EXPECT_NE(outcome_kinds(on_amd), outcome_kinds(on_intel));  // RSVD on AMD only
  EXPECT_TRUE(Judge::vendor_may_matter(on_amd, amd));
  EXPECT_TRUE(Judge::vendor_may_matter(on_intel, intel));
}

TEST(Judge, AnEntryChangedWithoutInvalidationAllowsOldAndNew) {
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
}

// SDM §4.10.2.3: a CPU may cache translations for prefetches and speculative accesses
// that never occur, so a translation the probe never used may be stale too (KVM's
// shadow MMU prefetches the neighbours of a faulting entry), until an invalidation of
// its page or a flush.
// The engine commits every access of a batch into one verdict: what an earlier access
// left there (another match, its entries, unpredictable A/D) must not carry over.
TEST(Judge, AReusedVerdictHoldsOnlyTheLastAccess) {
  World fresh_world, reused_world;
  const auto user = World::read(Va, Privilege::User);
  const Observed ok{Observed::Kind::Ok, 0, 0, 0, 0x1111};
  const auto fresh =
      fresh_world.judge.commit(user, false, 0, fresh_world.judge.judge(user, false), &ok);
  AccessVerdict reused;
  reused.matched = 3;
  reused.ad_predictable = false;
  reused.entries.assign(7, EntryEffect{4, 0x123000, 0x5, Pte::Dirty, Pte::Dirty, true, true});
  reused_world.judge.commit(user, false, 0, reused_world.judge.judge(user, false), &ok, reused);
  ASSERT_TRUE(fresh.agrees());
  EXPECT_EQ(reused.matched, fresh.matched);
  EXPECT_EQ(reused.ad_predictable, fresh.ad_predictable);
  ASSERT_EQ(reused.entries.size(), fresh.entries.size());
  ASSERT_EQ(fresh.entries.size(), 4U);  // PML4E, PDPTE, PDE, PTE
  for (std::size_t i = 0; i < fresh.entries.size(); ++i) {
    EXPECT_EQ(reused.entries[i].address, fresh.entries[i].address);
    EXPECT_EQ(reused.entries[i].must_set, fresh.entries[i].must_set);
    EXPECT_EQ(reused.entries[i].leaf, fresh.entries[i].leaf);
  }
}

TEST(Judge, ATranslationNeverUsedMayStillBeCachedSpeculatively) {
  World w;
  w.remap_to_b();
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
  w.judge.invlpg(Linear(Va2));  // another page: a leaf's TLB item survives it
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
  w.judge.invlpg(Linear(Va));
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x2222}));
}

TEST(Judge, AFlushForgetsTheValuesReplacedBeforeIt) {
  World w;
  w.remap_to_b();
  EXPECT_FALSE(w.judge.write_cr3(w.judge.state().cr3));
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x2222}));
}

TEST(Judge, AFaultOnThePageForgetsAValueReplacedBeforeIt) {
  World w;
  const auto leaf = w.builder.entry_address(Linear(Va), 1);
  w.judge.write_entry(leaf, 0);  // A replaced by not present: A may still be cached
  const auto user = World::read(Va, Privilege::User);
  EXPECT_EQ(w.values(user), (Values{0x1111}));
  const auto j = w.judge.judge(user, false);
  const Observed pf{Observed::Kind::Fault, 14, 0x4, Va, 0};
  EXPECT_TRUE(w.judge.commit(user, false, 0, j, &pf).agrees());
  EXPECT_TRUE(w.values(user).empty());
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
  // A supervisor page now, but the paging-structure caches may still hold the user
  // PDPTE for Va2, a page never accessed (SDM §4.10.3).
  w.cache_then_make_pdpte_supervisor();
  const auto user = World::read(Va2, Privilege::User);
  EXPECT_EQ(w.values(user), (Values{0x3333}));
  EXPECT_TRUE(w.faults(user));
  // INVLPG of any address empties the paging-structure caches.
  w.judge.invlpg(Linear(0x7000000));
  EXPECT_TRUE(w.values(user).empty());
}

// A CPU that answered from such a paging-structure-cache item may keep what it
// translated in its TLB (SDM §4.10.2.1), under the rules that item was walked with; the
// TLB entry outlives an INVLPG of another page, which empties the structure caches.
TEST(Judge, ASuccessFromAStaleUpperEntryMayStayInTheTlb) {
  World w;
  w.cache_then_make_pdpte_supervisor();
  const auto user = World::read(Va2, Privilege::User);
  const auto j = w.judge.judge(user, false);
  const Observed ok{Observed::Kind::Ok, 0, 0, 0, 0x3333};
  EXPECT_TRUE(w.judge.commit(user, false, 0, j, &ok).agrees());
  w.judge.invlpg(Linear(0x7000000));
  EXPECT_EQ(w.values(user), (Values{0x3333}));
  w.judge.invlpg(Linear(Va2));
  EXPECT_TRUE(w.values(user).empty());
}

// ... and a CPU that walked afresh and faulted keeps nothing of it.
TEST(Judge, AFaultFromTheFreshWalkKeepsNoStaleTranslation) {
  World w;
  w.cache_then_make_pdpte_supervisor();
  const auto user = World::read(Va2, Privilege::User);
  const auto j = w.judge.judge(user, false);
  const Observed pf{Observed::Kind::Fault, 14, 0x5, Va2, 0};
  EXPECT_TRUE(w.judge.commit(user, false, 0, j, &pf).agrees());
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
  // A, B, and the first mapping of the page (user, not global), replaced after the
  // last flush and never invalidated: it may have been cached speculatively.
  auto values = w.values(World::read(Va));
  EXPECT_LE(values.size(), 3u);
  values.erase(std::unique(values.begin(), values.end()), values.end());
  EXPECT_EQ(values, (Values{0x1111, 0x2222}));
}

// Does the fresh outcome of `a` accept a read that returned `value`?
bool read_may_return(const World& w, const paging::Access& a, std::uint64_t value) {
  const auto j = w.judge.judge(a, false);
  const Observed ok{Observed::Kind::Ok, 0, 0, 0, value};
  return std::any_of(j.allowed.begin(), j.allowed.end(),
                     [&](const Allowed& x) { return w.judge.matches(x, a, ok); });
}

TEST(Judge, AReadOfTheEntryItsOwnWalkUsesMaySeeTheAccessedBitSet) {
  // Va2's PTE maps the page table itself (a self-map): reading Va2 + the PTE's offset
  // reads that PTE, whose A bit the same read's walk sets before the access completes
  // (SDM vol. 3A §4.8). The read returns the entry with A clear or set; never D (a read
  // sets no D), never a bit the walk does not set.
  World w;
  const auto pte = w.builder.entry_address(Linear(Va2), 1);
  const std::uint64_t table = pte.value() & ~std::uint64_t{0xfff};
  const std::uint64_t entry = table | Pte::Present | Pte::Writable;
  w.judge.write_entry(pte, entry);
  const auto self = World::read(Va2 + (pte.value() & 0xfff));
  EXPECT_TRUE(read_may_return(w, self, entry));
  EXPECT_TRUE(read_may_return(w, self, entry | Pte::Accessed));
  EXPECT_FALSE(read_may_return(w, self, entry | Pte::Accessed | Pte::Dirty));
  EXPECT_FALSE(read_may_return(w, self, entry | Pte::User));
}

TEST(Judge, AReadOfAnotherEntrySeesNoAccessedBitFromThisWalk) {
  // The same self-map, reading the PTE of Va (not used by this walk): its A bit stays
  // as it is in memory.
  World w;
  const auto pte = w.builder.entry_address(Linear(Va2), 1);
  const std::uint64_t table = pte.value() & ~std::uint64_t{0xfff};
  w.judge.write_entry(pte, table | Pte::Present | Pte::Writable);
  const auto other = w.builder.entry_address(Linear(Va), 1);
  const std::uint64_t value = FrameA | Pte::Present | Pte::Writable | Pte::User;
  w.judge.write_entry(other, value);
  const auto read = World::read(Va2 + (other.value() & 0xfff));
  EXPECT_TRUE(read_may_return(w, read, value));
  EXPECT_FALSE(read_may_return(w, read, value | Pte::Accessed));
}

TEST(Judge, AFaultOnTheSecondPageKeepsTheFirstPagesTranslation) {
  // An 8-byte read at Va+0xffc crosses into Va2, which is not present: #PF with CR2 =
  // Va2. The first page may have been translated (and cached) before the fault, and the
  // fault invalidates only the faulting address's page (SDM §4.10.4.1).
  World w;
  w.judge.write_entry(w.builder.entry_address(Linear(Va2), 1), 0);
  auto crossing = World::read(Va + 0xffc);
  auto j = w.judge.judge(crossing, false);
  const Observed pf{Observed::Kind::Fault, 14, 0, Va2, 0};
  EXPECT_TRUE(w.judge.commit(crossing, false, 0, j, &pf).agrees());
  w.remap_to_b();
  EXPECT_EQ(w.values(World::read(Va)), (Values{0x1111, 0x2222}));
}

TEST(Judge, ATranslationAFaultDroppedIsNamedUntilInvalidatedAnyway) {
  World w;
  w.drop_by_user_fault();
  // The fault dropped the translation: only a #PF is allowed now, but a platform that
  // kept it would return FrameA's data.
  const auto read = World::read(Va);
  const Observed ok{Observed::Kind::Ok, 0, 0, 0, 0x1111};
  EXPECT_TRUE(w.values(read).empty());
  EXPECT_TRUE(w.judge.matches_dropped_by_fault(read, false, ok));
  const Observed other{Observed::Kind::Ok, 0, 0, 0, 0x2222};
  EXPECT_FALSE(w.judge.matches_dropped_by_fault(read, false, other));
  // INVLPG would have dropped it anyway: nothing left to name.
  w.judge.invlpg(Linear(Va));
  EXPECT_FALSE(w.judge.matches_dropped_by_fault(read, false, ok));
}

// A translation the CPU may have cached without using it (SDM §4.10.2.3: a replaced
// entry value) is dropped by a #PF on its page like any other; a platform that keeps
// TLB entries across a #PF may keep that one too (found on kvm_amd's shadow MMU, whose
// prefetched entries survive the fault).
TEST(Judge, ASpeculativeTranslationAFaultDroppedIsNamed) {
  World w;
  const auto leaf = w.builder.entry_address(Linear(Va), 1);
  w.judge.write_entry(leaf, 0);  // never accessed: cached, if at all, speculatively
  const auto user = World::read(Va, Privilege::User);
  const auto j = w.judge.judge(user, false);
  const Observed pf{Observed::Kind::Fault, 14, 0x4, Va, 0};
  EXPECT_TRUE(w.judge.commit(user, false, 0, j, &pf).agrees());
  const auto read = World::read(Va);
  EXPECT_TRUE(w.values(read).empty());
  EXPECT_TRUE(
      w.judge.matches_dropped_by_fault(read, false, Observed{Observed::Kind::Ok, 0, 0, 0, 0x1111}));
}

TEST(Judge, AWriteWithTwoAllowedPlacesLeavesBothUnknown) {
  // Va's PTE changed without INVLPG: a write may go to FrameA (the cached translation)
  // or FrameB (the fresh walk), and the CPU does not say which. A later read of either
  // frame may see the old or the new data.
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  auto write = World::read(Va);
  write.type = AccessType::Write;
  auto j = w.judge.judge(write, false);
  ASSERT_EQ(j.allowed.size(), 2u);
  w.judge.commit(write, false, 0x77, j, nullptr);
  w.judge.invlpg(Linear(Va));
  EXPECT_TRUE(read_may_return(w, World::read(Va), 0x2222));  // the write went to FrameA
  EXPECT_TRUE(read_may_return(w, World::read(Va), 0x77));
  // A write with one place makes the bytes known again.
  auto again = w.judge.judge(write, false);
  ASSERT_EQ(again.allowed.size(), 1u);
  w.judge.commit(write, false, 0x99, again, nullptr);
  EXPECT_TRUE(read_may_return(w, World::read(Va), 0x99));
  EXPECT_FALSE(read_may_return(w, World::read(Va), 0x2222));
}

TEST(Judge, AStaleSecondPageAloneIsAnotherOutcome) {
  // An 8-byte read at Va+0xffc uses both pages. After Va2's PTE changes without
  // INVLPG, the first page's translation is the same either way, but the second page
  // may come from the TLB (FrameA+0x1000) or the fresh walk (FrameB): two values.
  World w;
  w.access(World::read(Va + 0xffc));
  w.judge.write_entry(w.builder.entry_address(Linear(Va2), 1),
                      FrameB | Pte::Present | Pte::Writable | Pte::User);
  const auto crossing = World::read(Va + 0xffc);
  // Bytes 0..3 from FrameA+0xffc (0), bytes 4..7 from the second page's first bytes.
  EXPECT_TRUE(read_may_return(w, crossing, std::uint64_t{0x3333} << 32));
  EXPECT_TRUE(read_may_return(w, crossing, std::uint64_t{0x2222} << 32));
}

TEST(Judge, ATranslationFromTheTlbNeedNotSetAccessedInTheEntryNow) {
  // The CPU answers from its TLB (the stale FrameA translation): it walks nothing, so
  // the A bit of the entry now in memory may stay clear (SDM §4.10.2.3, §4.8).
  World w;
  w.access(World::read(Va));
  w.remap_to_b();
  const auto a = World::read(Va);
  const auto j = w.judge.judge(a, false);
  const Observed stale{Observed::Kind::Ok, 0, 0, 0, 0x1111};
  const auto v = w.judge.commit(a, false, 0, j, &stale);
  ASSERT_TRUE(v.agrees());
  const auto leaf = w.builder.entry_address(Linear(Va), 1);
  for (const auto& e : v.entries) {
    if (e.address == leaf.value()) {
      EXPECT_EQ(e.must_set & Pte::Accessed, 0u);
    }
  }
  // The model keeps the entry as the guest stored it: no A bit the CPU need not set.
  EXPECT_EQ(w.judge.read_entry(leaf) & Pte::Accessed, 0u);
}

TEST(Judge, AFaultInALargePageKeepsTheOtherSmallPagesOfIt) {
  // A CPU may hold a 2 MiB page as 4 KiB TLB entries (SDM §4.10.2.3); a #PF invalidates
  // only the entries for the faulting page number (§4.10.4.1). INVLPG drops them all.
  World w;
  constexpr std::uint64_t Big = 0x80000000, BigFrame = 0x600000;
  w.builder.map(Linear(Big), GuestPhys(BigFrame), 0x200000, PageSize::Size2M, Pte::Writable);
  w.memory.write64(GuestPhys(BigFrame), 0xaaaa);
  w.memory.write64(GuestPhys(BigFrame + 0x1000), 0xbbbb);
  w.judge.reset(w.judge.state());
  w.access(World::read(Big));
  w.judge.write_entry(w.builder.entry_address(Linear(Big), 2), 0);  // not invalidated
  auto a = World::read(Big);
  auto j = w.judge.judge(a, false);
  const Observed pf{Observed::Kind::Fault, 14, 0, Big, 0};
  ASSERT_TRUE(w.judge.commit(a, false, 0, j, &pf).agrees());
  EXPECT_TRUE(w.values(World::read(Big)).empty());
  EXPECT_EQ(w.values(World::read(Big + 0x1000)), (Values{0xbbbb}));
  EXPECT_TRUE(w.faults(World::read(Big + 0x1000)));
  w.judge.invlpg(Linear(Big + 0x5000));
  EXPECT_TRUE(w.values(World::read(Big + 0x1000)).empty());
}

TEST(Judge, AnEntryAFaultingWalkMaySetAccessedInReadsEitherWay) {
  // A walk that ends in a #PF may set A in the upper entries it used (SDM §4.8), or
  // not: a later read of such an entry as data may see either.
  World w;
  const auto pde = w.builder.entry_address(Linear(Va), 2);
  constexpr std::uint64_t Window = 0x50000000;
  w.builder.map(Linear(Window), GuestPhys(pde.value() & ~std::uint64_t{0xfff}), 0x1000,
                PageSize::Size4K, 0);
  w.judge.reset(w.judge.state());
  const auto pde_value = w.judge.read_entry(pde);
  ASSERT_EQ(pde_value & Pte::Accessed, 0u);
  auto a = World::read(Va + 0x2000);  // its PTE is not present
  auto j = w.judge.judge(a, false);
  const Observed pf{Observed::Kind::Fault, 14, 0, Va + 0x2000, 0};
  ASSERT_TRUE(w.judge.commit(a, false, 0, j, &pf).agrees());
  const auto as_data = World::read(Window + pde.value() % 0x1000);
  EXPECT_TRUE(read_may_return(w, as_data, pde_value));
  EXPECT_TRUE(read_may_return(w, as_data, pde_value | Pte::Accessed));
  // Written again, the entry is what was written.
  w.judge.write_entry(pde, pde_value);
  EXPECT_FALSE(read_may_return(w, as_data, pde_value | Pte::Accessed));
}

TEST(Judge, MemoryTheGuestsMachineryWritesIsReadWithoutAValue) {
  World w;
  EXPECT_FALSE(read_may_return(w, World::read(Va), 0xdead));
  w.judge.set_unpredictable({{FrameA, FrameA + 0x1000}});
  EXPECT_TRUE(read_may_return(w, World::read(Va), 0xdead));
  EXPECT_FALSE(read_may_return(w, World::read(Va + 0x1000), 0xdead));  // the next page
}

TEST(Judge, APlatformThatKeepsEntriesAcrossFaultsMayHaveWrittenThroughOne) {
  // After a #PF dropped Va's FrameA translation and the entry names FrameB, the
  // architecture sends a write to FrameB only; widened with the dropped entry (a
  // platform known to keep it), the data may be in either frame.
  World w;
  const auto leaf = w.drop_by_user_fault();
  w.judge.write_entry(leaf, FrameB | Pte::Present | Pte::Writable | Pte::User);
  auto write = World::read(Va);
  write.type = AccessType::Write;
  auto j = w.judge.judge(write, false);
  ASSERT_EQ(j.allowed.size(), 1u);
  w.judge.widen_with_dropped(write, false, j);
  ASSERT_EQ(j.allowed.size(), 2u);
  EXPECT_TRUE(j.allowed[1].stale);
  const Observed ok{Observed::Kind::Ok, 0, 0, 0, 0};
  ASSERT_TRUE(w.judge.commit(write, false, 0x77, j, &ok).agrees());
  w.judge.invlpg(Linear(Va));
  EXPECT_TRUE(read_may_return(w, World::read(Va), 0x77));
  EXPECT_TRUE(read_may_return(w, World::read(Va), 0x2222));  // it went to FrameA
}

// shadow-mmu-host-pte-write-invisible (access_deviations.hpp): KVM's shadow MMU misses
// the host's writes of an entry, and may have shadowed any value one of them replaced,
// not only the value before the first (a fuzzer's KVM finding, tests/fuzz/findings/
// a_second_host_write_may_stay_invisible_too.pgl). Va2's PTE: the guest clears it, the
// host writes FrameB, a read walks it, the host makes it not present, INVLPG.
struct HostWrites : World {
  GuestPhys leaf = builder.entry_address(Linear(Va2), 1);
  static constexpr std::uint64_t ToB = FrameB | Pte::Present | Pte::User;
  static constexpr std::uint64_t NotPresent = FrameA;  // P clear
  paging::Access user = read(Va2, Privilege::User);

  // `walked_b`: the host writes FrameB and a read walks it before the last host write.
  explicit HostWrites(bool walked_b) {
    judge.write_entry(leaf, 0);
    if (walked_b) {
      judge.foreign_write(leaf, ToB);
      EXPECT_FALSE(judge.write_cr3(judge.state().cr3));
      EXPECT_EQ(values(read(Va2)), (Values{0x2222}));
      access(read(Va2));
    }
    judge.foreign_write(leaf, NotPresent);
    judge.invlpg(Linear(Va2));
  }
  // The architecture refuses `ob`; is it the host-write deviation?
  bool named(const Observed& ob) {
    const auto j = judge.judge(user, false);
    const bool allowed = std::any_of(j.allowed.begin(), j.allowed.end(),
                                     [&](const Allowed& x) { return judge.matches(x, user, ob); });
    EXPECT_FALSE(allowed);
    const bool before = judge.walk_before_foreign_writes(user, false, ob).has_value();
    OpAccess op;
    op.address = Linear(Va2);
    op.privilege = Privilege::User;
    OpResult result;
    result.status = ob.kind == Observed::Kind::Ok ? ProbeStatus::Ok : ProbeStatus::Fault;
    std::vector<paging::Outcome> outcomes;
    for (const auto& x : j.allowed) outcomes.push_back(x.outcome);
    const std::vector<std::string> platform{"kvm", "kvm_amd", "kvm-shadow-mmu"};
    const AccessCase c{platform, op, result, outcomes, before, judge.state_for(false), {}, {}};
    const auto* d = find_access_deviation(c, known_access_deviations());
    EXPECT_EQ(before, d != nullptr);
    return d != nullptr && d->id == "shadow-mmu-host-pte-write-invisible";
  }
};

TEST(Judge, AnyValueAHostWriteReplacedMayStillBeWalkedAsTheNamedDeviation) {
  HostWrites w(true);
  EXPECT_TRUE(w.faults(w.user));
  EXPECT_TRUE(w.named({Observed::Kind::Ok, 0, 0, 0, 0x2222}));  // through FrameB
}

TEST(Judge, AValueNoHostWriteReplacedIsNotTheHostWriteDeviation) {
  HostWrites once(false);  // one host write, over 0: FrameB never in the entry
  EXPECT_FALSE(once.named({Observed::Kind::Ok, 0, 0, 0, 0x2222}));
  // The guest's own write makes the entry what the CPU sees: the host's FrameB is gone.
  HostWrites w(true);
  w.judge.write_entry(w.leaf, 0);
  w.judge.foreign_write(w.leaf, HostWrites::NotPresent);
  w.judge.invlpg(Linear(Va2));
  EXPECT_FALSE(w.named({Observed::Kind::Ok, 0, 0, 0, 0x2222}));
}

TEST(Judge, AnOutcomeNoHostWrittenValueGivesIsStillRefused) {
  HostWrites w(true);
  EXPECT_FALSE(w.named({Observed::Kind::Ok, 0, 0, 0, 0x1111}));  // FrameA's data
  // A protection #PF: each value the PTE held is user-readable or not present.
  EXPECT_FALSE(w.named({Observed::Kind::Fault, 14, 0x5, Va2, 0}));
}

}  // namespace
}  // namespace pagelab::lab::judge

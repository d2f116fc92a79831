// A foreign (host) write inside a batch is a sync point: the probe stops at that
// record, the host writes, and the same batch goes on. The accesses before it must
// see the old memory and the ones after it the new, exactly where the op list puts
// the write. On QEMU TCG, so that it runs anywhere (the nested KVM stage runs the KVM side of it).
#include <gtest/gtest.h>

#include "lab/qemu_engine_fixture.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::test {
namespace {

using paging::AccessType;
using paging::GuestPhys;
using paging::Linear;
using paging::Privilege;
using paging::Pte;

constexpr Linear kPage{0x10000000};

lab::OpAccess read(Linear va) {
  lab::OpAccess a;
  a.address = va;
  a.type = AccessType::Read;
  a.privilege = Privilege::User;
  a.size = 8;
  return a;
}

class EngineSync : public QemuEngineTest {
 protected:
  void SetUp() override {
    QemuEngineTest::SetUp();
    if (IsSkipped()) return;
    auto& s = engine_->space();
    frame_a_ = s.map(kPage, std::nullopt, 0x1000, paging::PageSize::Size4K, Pte::User);
    frame_b_ = s.allocate_frame();
    engine_->start();
    lab_->physical().write64(frame_a_, 0xAAAA);
    lab_->physical().write64(frame_b_, 0xBBBB);
    pte_ = s.entry_address(kPage, 1);
    const auto pte = s.read_entry(kPage, 1);
    to_b_ = (pte & ~paging::bits(12, 51)) | frame_b_.value() | Pte::Accessed;
  }
  GuestPhys frame_a_, frame_b_, pte_;
  std::uint64_t to_b_ = 0;
};

TEST_F(EngineSync, AForeignWriteLandsBetweenTheAccessesAroundItInOneBatch) {
  const std::vector<lab::Op> ops{
      read(kPage),
      lab::OpForeignWrite{frame_a_, 0x1111},  // data: the next read must see it
      read(kPage),
      lab::OpForeignWrite{pte_, to_b_},  // the PTE: seen after INVLPG
      lab::OpInvlpg{kPage},
      read(kPage),
      lab::OpForeignWrite{frame_b_, 0x2222},
      read(kPage),
  };
  const auto before = engine_->vm_exits();
  const auto r = engine_->run(ops);
  ASSERT_EQ(r.size(), ops.size());
  for (const auto& x : r) EXPECT_TRUE(x.agrees) << x.report;
  EXPECT_EQ(r[0].observed.value, 0xAAAAu);
  EXPECT_EQ(r[2].observed.value, 0x1111u);
  EXPECT_EQ(r[5].observed.value, 0xBBBBu);
  EXPECT_EQ(r[7].observed.value, 0x2222u);
  // One batch command and one round trip per sync point.
  EXPECT_EQ(engine_->vm_exits() - before, 4u);
  // What the probe left in memory is what the host wrote last.
  EXPECT_EQ(lab_->physical().read64(pte_), to_b_);
}

TEST_F(EngineSync, AForeignWriteFirstOrLastInTheBatchIsStillDoneInOrder) {
  const auto r = engine_->run(std::vector<lab::Op>{
      lab::OpForeignWrite{frame_a_, 0x3333}, read(kPage), lab::OpForeignWrite{frame_a_, 0x4444}});
  for (const auto& x : r) EXPECT_TRUE(x.agrees) << x.report;
  EXPECT_EQ(r[1].observed.value, 0x3333u);
  EXPECT_EQ(lab_->physical().read64(frame_a_), 0x4444u);
}

}  // namespace
}  // namespace pagelab::test

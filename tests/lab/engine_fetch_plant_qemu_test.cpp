// What the engine does around the probe's own needs: where it plants the instruction a
// fetch jumps to, and when that splits a batch (an earlier write to those bytes always
// does, an earlier read only when planting changes what it reads); and that it never
// lets a write overwrite the probe. On QEMU TCG, so that it runs anywhere.
#include <gtest/gtest.h>

#include "lab/qemu_engine_fixture.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::test {
namespace {

using paging::AccessType;
using paging::Linear;
using paging::Privilege;

constexpr Linear kPage{0x10000000};
constexpr std::uint64_t kTarget = 0x800;  // within the page
constexpr Linear kAlias{0x20000000};      // maps the probe's first code page

lab::OpAccess access(std::uint64_t offset, AccessType type) {
  lab::OpAccess a;
  a.address = Linear(kPage.value() + offset);
  a.type = type;
  a.privilege = Privilege::Supervisor;
  a.size = type == AccessType::Write ? 8 : 2;
  a.write_value = 0x1234;
  return a;
}

class EngineFetchPlant : public QemuEngineTest {
 protected:
  void SetUp() override {
    QemuEngineTest::SetUp();
    if (IsSkipped()) return;
    engine_->space().map(kPage, std::nullopt, 0x1000, paging::PageSize::Size4K,
                         paging::Pte::Writable);
    engine_->space().map(kAlias, paging::GuestPhys(PROBE_LOAD_GPA), 0x1000,
                         paging::PageSize::Size4K, paging::Pte::Writable);
    engine_->start();
  }
  // Runs `ops`; returns the VM exits they took. Every result must agree.
  std::uint64_t run(const std::vector<lab::Op>& ops,
                    std::vector<lab::CheckedResult>* out = nullptr) {
    const auto before = engine_->vm_exits();
    auto r = engine_->run(ops);
    for (const auto& x : r) {
      EXPECT_TRUE(x.agrees) << x.report;
      EXPECT_EQ(x.observed.status, lab::ProbeStatus::Ok) << x.summary();
    }
    if (out != nullptr) *out = std::move(r);
    return engine_->vm_exits() - before;
  }
};

TEST_F(EngineFetchPlant, AReadOfBytesNotPlantedYetEndsTheBatchBeforeTheFetch) {
  std::vector<lab::CheckedResult> r;
  // The read sees what the page held (zeros), not the instruction planted for the fetch.
  EXPECT_EQ(run({access(kTarget, AccessType::Read), access(kTarget, AccessType::Fetch)}, &r), 2u);
  EXPECT_EQ(r.front().observed.value, 0u);
  // Planted now: the same read sees the instruction, and the batch is not split.
  EXPECT_EQ(run({access(kTarget, AccessType::Read), access(kTarget, AccessType::Fetch)}, &r), 1u);
  EXPECT_EQ(r.front().observed.value, BATCH_FETCH_RETURN_0 | BATCH_FETCH_RETURN_1 << 8);
}

TEST_F(EngineFetchPlant, AnEarlierWriteToThePlantedBytesAlwaysEndsTheBatch) {
  run({access(kTarget, AccessType::Fetch)});  // planted
  EXPECT_EQ(run({access(kTarget, AccessType::Write), access(kTarget, AccessType::Fetch)}), 2u);
  // A write elsewhere in the page leaves the batch whole.
  EXPECT_EQ(run({access(0x100, AccessType::Write), access(kTarget, AccessType::Fetch)}), 1u);
}

TEST_F(EngineFetchPlant, AWriteThroughAnAliasOfTheProbeIsSkippedAndTheBatchGoesOn) {
  lab::OpAccess over_probe;
  over_probe.address = Linear(kAlias.value() + 0x100);
  over_probe.type = AccessType::Write;
  over_probe.size = 8;
  const std::vector<lab::Op> ops = {over_probe, access(0x100, AccessType::Write)};
  const auto r = engine_->run(ops);
  ASSERT_EQ(r.size(), 2u);
  ASSERT_TRUE(r[0].skipped.has_value());
  EXPECT_NE(r[0].skipped->find("the probe's own memory"), std::string::npos) << *r[0].skipped;
  EXPECT_TRUE(r[1].agrees) << r[1].report;
  EXPECT_EQ(r[1].observed.status, lab::ProbeStatus::Ok);
}

}  // namespace
}  // namespace pagelab::test

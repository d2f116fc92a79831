// The batch protocol: thousands of accesses for one VM exit, faults that do not end
// the batch, and a check that fails readably when the oracle is told a lie.
#include <gtest/gtest.h>

#include "lab/engine_fixture.hpp"

namespace pagelab::test {
namespace {

using lab::ProbeStatus;
using paging::AccessType;
using paging::Privilege;

using EngineBatch = EngineTest;

TEST_F(EngineBatch, TwoThousandAccessesCostOneVmExit) {
  start();
  std::vector<lab::Op> ops;
  for (unsigned i = 0; i < 2000; ++i) {
    const auto priv = i % 2 ? Privilege::User : Privilege::Supervisor;
    // Every fourth access faults (user write to a read-only page): faults stay in the guest.
    if (i % 4 == 3) {
      ops.push_back(access(kUserRo + 8 * (i % 512), AccessType::Write, Privilege::User));
    } else {
      ops.push_back(access(kUserRw + 8 * (i % 512), AccessType::Read, priv));
    }
  }
  const auto exits_before = lab().exits();
  const auto engine_before = engine().vm_exits();
  const auto r = engine().run(ops);
  EXPECT_EQ(lab().exits() - exits_before, 1u);
  EXPECT_EQ(engine().vm_exits() - engine_before, 1u);
  ASSERT_EQ(r.size(), ops.size());
  unsigned faults = 0;
  for (const auto& x : r) {
    EXPECT_TRUE(x.agrees) << x.report;
    faults += x.observed.status == ProbeStatus::Fault;
  }
  EXPECT_EQ(faults, 500u);
}

TEST_F(EngineBatch, AfterACpl3FaultTheNextRecordRunsWhereverItBelongs) {
  // A fault in the user stub is handled at CPL0, which then dispatches the next record
  // itself: CPL0 accesses (plain and with AC), CPL0 operations, CPL3 accesses, and
  // the end of the batch must all follow a CPL3 fault correctly.
  start();
  const auto user_fault = access(kUserRo, AccessType::Write, Privilege::User, 8, 1);
  const std::vector<lab::Op> ops{
      user_fault,
      access(kSuperRw, AccessType::Read, Privilege::Supervisor),
      user_fault,
      access(kSuperRw, AccessType::Write, Privilege::Supervisor, 8, 0x1234),
      user_fault,
      lab::OpReadControl{},
      user_fault,
      access(kUserRw, AccessType::Read, Privilege::User),
      user_fault,
      [] {
        auto a = access(kSuperRw, AccessType::Read, Privilege::Supervisor);
        a.ac = true;
        return a;
      }(),
      access(kSuperRw + 8, AccessType::Read, Privilege::Supervisor),
      user_fault,
  };
  const auto exits_before = engine().vm_exits();
  const auto r = engine().run(ops);
  EXPECT_EQ(engine().vm_exits() - exits_before, 1u);
  ASSERT_EQ(r.size(), ops.size());
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_TRUE(r[i].agrees) << i << ": " << r[i].report;
    const auto* a = std::get_if<lab::OpAccess>(&ops[i]);
    const bool faults = a && a->privilege == Privilege::User && a->address == kUserRo;
    EXPECT_EQ(r[i].observed.status, faults ? ProbeStatus::Fault : ProbeStatus::Ok) << i;
  }
  // Write: present, write, user (SDM 4.7).
  EXPECT_EQ(r.back().observed.error_code, 0x7u);
  EXPECT_EQ(r.back().observed.cr2, kUserRo.value());
  EXPECT_NE(r[5].observed.cr0 & paging::Cr0::Pg, 0u);  // the CPL0 operation really ran
  EXPECT_EQ(r[9].observed.value, 0x1234u);             // record 3's store, read back
}

TEST_F(EngineBatch, BeyondCapacityTheBatchIsSplit) {
  start();
  std::vector<lab::Op> ops(lab::Engine::batch_capacity() + 1,
                           access(kUserRw, AccessType::Read, Privilege::User));
  const auto before = engine().vm_exits();
  const auto r = engine().run(ops);
  EXPECT_EQ(engine().vm_exits() - before, 2u);
  for (const auto& x : r) ASSERT_TRUE(x.agrees) << x.report;
}

TEST_F(EngineBatch, AWrongOracleInputFailsWithAReadableReport) {
  start();
  auto& s = engine().space();
  const auto pte = s.entry_address(kUserRo, 1);
  // Tell the oracle the read-only page is writable.
  engine().override_oracle_memory(pte, s.read_entry(kUserRo, 1) | paging::Pte::Writable);
  const std::vector<lab::Op> ops{access(kUserRo + 0x10, AccessType::Write, Privilege::User, 8, 3)};
  const auto r = engine().run(ops);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].agrees);
  EXPECT_FALSE(r[0].deviation);
  const auto& text = r[0].report;
  EXPECT_NE(text.find("observed: #PF"), std::string::npos) << text;
  EXPECT_NE(text.find("allowed:"), std::string::npos) << text;
  EXPECT_NE(text.find("PML4"), std::string::npos) << text;  // the walk, level by level
  EXPECT_NE(text.find("PT "), std::string::npos) << text;
  EXPECT_NE(text.find("instruction at RIP"), std::string::npos) << text;
  EXPECT_NE(text.find("mov"), std::string::npos) << text;  // the faulting store, disassembled
}

}  // namespace
}  // namespace pagelab::test

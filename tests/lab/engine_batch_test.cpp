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

// Every batch operation kind other than accesses: control-register writes and
// reads, entry writes by the probe, invalidations, fences; and operations the
// platform cannot run are skipped with a reason, not run.
#include <gtest/gtest.h>

#include "lab/engine_fixture.hpp"
#include "pagelab/lab/machine/cpu_features.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::test {
namespace {

using lab::ProbeStatus;
using paging::AccessType;
using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::Privilege;

using EngineOps = EngineTest;

TEST_F(EngineOps, ReadControlShowsWhatTheOracleAssumes) {
  start();
  const auto r = one(lab::OpReadControl{});
  const auto s = engine().cpu_state();
  EXPECT_EQ(r.observed.cr3, engine().space().root().value());
  EXPECT_NE(r.observed.cr0 & Cr0::Pg, 0u);
  EXPECT_NE(r.observed.cr0 & Cr0::Wp, 0u);
  EXPECT_NE(r.observed.efer & Efer::Lma, 0u);
  EXPECT_EQ(r.observed.cr4, s.cr4);
}

TEST_F(EngineOps, Cr0WpWriteChangesSupervisorWrites) {
  start();
  const auto cr0 = engine().cpu_state().cr0;
  const std::vector<lab::Op> ops{
      lab::OpWriteControl{lab::ControlRegister::Cr0, cr0 & ~Cr0::Wp},
      access(kSuperRo, AccessType::Write, Privilege::Supervisor, 8, 1),
      lab::OpWriteControl{lab::ControlRegister::Cr0, cr0},
      access(kSuperRo, AccessType::Write, Privilege::Supervisor, 8, 2),
      lab::OpReadControl{},
  };
  const auto r = engine().run(ops);
  for (const auto& x : r) EXPECT_TRUE(x.agrees) << x.report;
  EXPECT_EQ(r[1].observed.status, ProbeStatus::Ok);
  EXPECT_EQ(r[3].observed.status, ProbeStatus::Fault);  // WP back on: #PF
  EXPECT_EQ(r[3].observed.error_code, paging::PfError::P | paging::PfError::W);
}

TEST_F(EngineOps, Cr3Cr4EferWritesOfTheCurrentValuesKeepWorking) {
  start();
  const auto s = engine().cpu_state();
  const std::vector<lab::Op> ops{
      lab::OpWriteControl{lab::ControlRegister::Cr3, s.cr3},
      lab::OpWriteControl{lab::ControlRegister::Cr4, s.cr4},
      lab::OpWriteControl{lab::ControlRegister::Efer, s.efer},
      lab::OpTogglePge{},
      lab::OpFence{},
      access(kUserRw, AccessType::Read, Privilege::User),
      lab::OpReadControl{},
  };
  const auto r = engine().run(ops);
  for (const auto& x : r) {
    EXPECT_TRUE(x.agrees) << x.report;
    EXPECT_EQ(x.observed.status, ProbeStatus::Ok) << x.summary();
  }
}

TEST_F(EngineOps, EntryWriteByTheProbeUnmapsAPage) {
  start();
  auto& s = engine().space();
  const auto pte = s.entry_address(kUserRw, 1);
  const std::vector<lab::Op> ops{
      access(kUserRw, AccessType::Read, Privilege::User),
      lab::OpWriteEntry{pte, 0},
      lab::OpInvlpg{kUserRw},
      access(kUserRw, AccessType::Read, Privilege::User),
  };
  const auto r = engine().run(ops);
  for (const auto& x : r) EXPECT_TRUE(x.agrees) << x.report;
  EXPECT_EQ(lab().physical().read64(pte), 0u);
  EXPECT_EQ(r[3].observed.vector, 14u);
  EXPECT_EQ(r[3].observed.error_code, paging::PfError::U);  // not present, read, user
}

TEST_F(EngineOps, UnsupportedInstructionsAreSkippedWithAReason) {
  start();
  const std::vector<lab::Op> ops{
      lab::OpWriteControl{lab::ControlRegister::Pkru, 0},
      lab::OpInvpcid{2, 0, paging::Linear{0}},
      lab::OpFence{},
  };
  const auto r = engine().run(ops);
  if (lab().cpu().has(lab::cpuid::Pku)) {
    EXPECT_FALSE(r[0].skipped);
  } else {
    ASSERT_TRUE(r[0].skipped);
    EXPECT_NE(r[0].skipped->find("PKU"), std::string::npos);
  }
  if (lab().cpu().has(lab::cpuid::Invpcid)) {
    EXPECT_FALSE(r[1].skipped);
  } else {
    ASSERT_TRUE(r[1].skipped);
    EXPECT_NE(r[1].skipped->find("INVPCID"), std::string::npos);
  }
  EXPECT_FALSE(r[2].skipped);
  EXPECT_EQ(r[2].observed.status, ProbeStatus::Ok);
}

}  // namespace
}  // namespace pagelab::test

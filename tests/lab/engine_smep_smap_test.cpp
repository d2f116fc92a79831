// SMEP and SMAP (SDM §4.6.1): supervisor fetches from user pages fault with I; with
// SMAP, supervisor data accesses to user pages fault unless RFLAGS.AC=1. The oracle
// is given the CR4 bits the guest really has (some KVMs enforce them without CPUID
// reporting them); a refused bit skips with the reason.
#include <gtest/gtest.h>

#include "lab/engine_fixture.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::test {
namespace {

using lab::ProbeStatus;
using paging::AccessType;
using paging::PfError;
using paging::Privilege;

class EngineSmepSmap : public EngineTest {
 protected:
  void start_with(std::uint64_t cr4) {
    lab::EngineOptions options;
    options.cr4_set = cr4;
    try {
      start(options);
    } catch (const std::runtime_error& e) {
      GTEST_SKIP() << "the CPU refused CR4 bits " << std::hex << cr4 << ": " << e.what();
    }
  }
};

TEST_F(EngineSmepSmap, SmepBlocksSupervisorFetchFromUserPage) {
  start_with(paging::Cr4::Smep);
  if (IsSkipped()) return;
  const auto r = one(access(kUserRw + 0x80, AccessType::Fetch, Privilege::Supervisor));
  EXPECT_EQ(r.observed.vector, 14u);
  EXPECT_EQ(r.observed.error_code, PfError::P | PfError::I);
  EXPECT_EQ(r.observed.cr2, (kUserRw + 0x80).value());
  // CPL3 fetches and supervisor fetches of supervisor pages are unaffected.
  EXPECT_EQ(one(access(kUserRw + 0x80, AccessType::Fetch, Privilege::User)).observed.status,
            ProbeStatus::Ok);
  EXPECT_EQ(one(access(kSuperRw + 0x80, AccessType::Fetch, Privilege::Supervisor)).observed.status,
            ProbeStatus::Ok);
}

TEST_F(EngineSmepSmap, SmapBlocksSupervisorDataAccessUnlessAc) {
  start_with(paging::Cr4::Smap);
  if (IsSkipped()) return;
  auto blocked = one(access(kUserRw + 8, AccessType::Read, Privilege::Supervisor));
  EXPECT_EQ(blocked.observed.vector, 14u);
  EXPECT_EQ(blocked.observed.error_code, PfError::P);
  auto write = one(access(kUserRw + 8, AccessType::Write, Privilege::Supervisor));
  EXPECT_EQ(write.observed.error_code, PfError::P | PfError::W);
  auto with_ac = access(kUserRw + 8, AccessType::Read, Privilege::Supervisor);
  with_ac.ac = true;
  EXPECT_EQ(one(with_ac).observed.status, ProbeStatus::Ok);
  // The next access has AC=0 again (the probe must not leak AC).
  EXPECT_EQ(one(access(kUserRw + 8, AccessType::Read, Privilege::Supervisor)).observed.status,
            ProbeStatus::Fault);
  EXPECT_EQ(one(access(kUserRw + 8, AccessType::Read, Privilege::User)).observed.status,
            ProbeStatus::Ok);
}

}  // namespace
}  // namespace pagelab::test

// Protection keys next to the other paging rights (SDM vol. 3 §4.6.2, §4.7): the PK bit
// of the error code is set whenever the key rule refuses the access, whether or not
// R/W, U/S or SMAP refuse it too. The three reproducers of issue 10.
#include <gtest/gtest.h>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/decide.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "walk_fixture.hpp"

namespace pagelab::paging {
namespace {

using test::error_code;
using test::translation;

constexpr std::uint32_t P = PfError::P, W = PfError::W, U = PfError::U, Pk = PfError::Pk;
constexpr unsigned Key = 1;

// The issue's tables: 0x0 maps through 0x1000/0x2000/0x3000/0x4000 to a read-only user
// page at 0x5000 with protection key 1; CR0 = PE|WP|PG, CR4 = PAE|PKE, EFER = LME|LMA|NXE.
struct IssueTables : ::testing::Test {
  IssueTables() {
    memory.write64(GuestPhys(0x1000), 0x2007);
    memory.write64(GuestPhys(0x2000), 0x3007);
    memory.write64(GuestPhys(0x3000), 0x4007);
    leaf(Pte::User);
    state.cr3 = 0x1000;
    state.cr0 = Cr0::Pe | Cr0::Wp | Cr0::Pg;
    state.cr4 = Cr4::Pae | Cr4::Pke;
    state.efer = Efer::Lme | Efer::Lma | Efer::Nxe;
    state.pkru = Pkru::access_disable(Key);
  }
  // The PTE for 0x0: present, read-only, key 1, plus `flags`.
  void leaf(std::uint64_t flags) {
    memory.write64(GuestPhys(0x4000),
                   0x5000 | Pte::Present | flags | std::uint64_t{Key} << Pte::ProtectionKeyShift);
  }
  Walk run(AccessType type, Privilege privilege) {
    const Access a{Linear(0), type, privilege};
    const Walk w = walk(memory, state, a);
    // The decision path must agree with the explaining one.
    EXPECT_EQ(to_outcome(decide(memory, state, a)), w.outcome);
    return w;
  }
  BufferMemory memory{0x10000};
  CpuState state;
};

// User write to a read-only user page, PKRU.AD1=1: R/W refuses (P W U), the key refuses (PK).
TEST_F(IssueTables, UserWriteToReadOnlyPageWithAccessDisabledKeyIs0x27) {
  const Walk w = run(AccessType::Write, Privilege::User);
  EXPECT_EQ(error_code(w), P | W | U | Pk);
  EXPECT_EQ(error_code(w), 0x27u);
}

// Supervisor read of a user page with SMAP and RFLAGS.AC=0, PKRU.AD1=1: SMAP refuses (P),
// the key refuses (PK).
TEST_F(IssueTables, SmapBlockedSupervisorReadWithAccessDisabledKeyIs0x21) {
  state.cr4 |= Cr4::Smap;
  const Walk w = run(AccessType::Read, Privilege::Supervisor);
  EXPECT_EQ(error_code(w), P | Pk);
  EXPECT_EQ(error_code(w), 0x21u);
}

// Supervisor write to a read-only user page with CR0.WP=1, PKRU.WD1=1: WP refuses (P W),
// and WD applies to supervisor writes when CR0.WP=1 (PK).
TEST_F(IssueTables, SupervisorWriteWithWpToReadOnlyPageWithWriteDisabledKeyIs0x23) {
  state.pkru = Pkru::write_disable(Key);
  const Walk w = run(AccessType::Write, Privilege::Supervisor);
  EXPECT_EQ(error_code(w), P | W | Pk);
  EXPECT_EQ(error_code(w), 0x23u);
}

TEST_F(IssueTables, WriteDisableDoesNotBindSupervisorWritesWithoutWp) {
  state.pkru = Pkru::write_disable(Key);
  state.cr0 &= ~Cr0::Wp;
  EXPECT_NE(translation(run(AccessType::Write, Privilege::Supervisor)), nullptr);
}

// Keys apply to user-mode addresses only: a supervisor page carries no PK.
TEST_F(IssueTables, UserReadOfSupervisorPageHasNoPk) {
  leaf(0);
  EXPECT_EQ(error_code(run(AccessType::Read, Privilege::User)), P | U);
}

// Keys apply to data accesses only.
TEST_F(IssueTables, FetchesIgnoreKeys) {
  EXPECT_NE(translation(run(AccessType::Fetch, Privilege::User)), nullptr);
}

TEST_F(IssueTables, KeyAloneStillFaultsWithPk) {
  leaf(Pte::User | Pte::Writable);
  EXPECT_EQ(error_code(run(AccessType::Write, Privilege::User)), P | W | U | Pk);
  state.pkru = 0;
  EXPECT_NE(translation(run(AccessType::Write, Privilege::User)), nullptr);
}

}  // namespace
}  // namespace pagelab::paging

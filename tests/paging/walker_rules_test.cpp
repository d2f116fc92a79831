// Reserved bits, permissions and error codes, one rule per test (SDM vol. 3 §4.6, §4.7,
// tables 4-4..4-20).
#include <gtest/gtest.h>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_format.hpp"
#include "walk_fixture.hpp"

namespace pagelab::paging {
namespace {

using test::error_code;
using test::translation;
using test::World;

constexpr std::uint64_t Rw = Pte::Writable;
constexpr std::uint64_t Us = Pte::User;
constexpr std::uint32_t P = PfError::P, W = PfError::W, U = PfError::U, Rsvd = PfError::Rsvd,
                        I = PfError::I, Pk = PfError::Pk;
constexpr std::uint64_t Va = 0x0000'1234'5670'0000;  // PML4 36, PDPT 209, PD 179, PT 256

struct FourLevel : ::testing::Test {
  FourLevel() {
    world.builder.map(Linear(Va), GuestPhys(0x7000), 0x1000, PageSize::Size4K, Rw | Us);
  }
  void poke(unsigned level, std::uint64_t set, std::uint64_t clear = 0) {
    const std::uint64_t e = world.builder.read_entry(Linear(Va), level);
    world.builder.write_entry(Linear(Va), level, (e | set) & ~clear);
  }
  World world{PagingMode::Level4};
};

// --- reserved bits, 4-level -------------------------------------------------------

TEST_F(FourLevel, BitAboveMaxphyaddrIsReservedAtEveryLevel) {
  for (unsigned level = 1; level <= 4; ++level) {
    World w(PagingMode::Level4);
    w.builder.map(Linear(Va), GuestPhys(0x7000), 0x1000, PageSize::Size4K, Rw | Us);
    const std::uint64_t e = w.builder.read_entry(Linear(Va), level);
    w.builder.write_entry(Linear(Va), level, e | bit(48));  // MAXPHYADDR is 48
    EXPECT_EQ(error_code(w.run(Va)), P | Rsvd) << "level " << level;
    EXPECT_EQ(error_code(w.run(Va, AccessType::Write, Privilege::User)), P | Rsvd | W | U)
        << "level " << level;
  }
}

TEST_F(FourLevel, Bit51IsNotReservedWithMaxphyaddr52) {
  CpuFeatures f;
  f.maxphyaddr = 52;
  World w(PagingMode::Level4, f);
  w.builder.map(Linear(Va), GuestPhys(0x7000), 0x1000, PageSize::Size4K, Rw);
  w.builder.write_entry(Linear(Va), 1, w.builder.read_entry(Linear(Va), 1) | bit(51));
  ASSERT_NE(translation(w.run(Va)), nullptr);
  EXPECT_EQ(translation(w.run(Va))->physical.value(), bit(51) | 0x7000);
}

TEST_F(FourLevel, IgnoredHighBitsAreNotReserved) {
  poke(4, bits(52, 58));
  poke(1, bits(52, 58));
  EXPECT_NE(translation(world.run(Va)), nullptr);
}

TEST_F(FourLevel, XdIsReservedWhenNxeIsOff) {
  world.state.efer &= ~Efer::Nxe;
  for (unsigned level = 1; level <= 4; ++level) {
    poke(level, Pte::NoExecute);
    EXPECT_EQ(error_code(world.run(Va)), P | Rsvd) << "level " << level;
    poke(level, 0, Pte::NoExecute);
  }
  EXPECT_NE(translation(world.run(Va)), nullptr);
}

TEST_F(FourLevel, PsInPml4eIsReserved) {
  poke(4, Pte::PageSize);
  EXPECT_EQ(error_code(world.run(Va)), P | Rsvd);
}

TEST(FiveLevelRules, PsInPml5eAndPml4eIsReserved) {
  CpuFeatures f;
  f.la57 = true;
  for (unsigned level : {5u, 4u}) {
    World w(PagingMode::Level5, f);
    w.builder.map(Linear(Va), GuestPhys(0x7000), 0x1000, PageSize::Size4K, Rw);
    ASSERT_NE(translation(w.run(Va)), nullptr);
    w.builder.write_entry(Linear(Va), level,
                          w.builder.read_entry(Linear(Va), level) | Pte::PageSize);
    EXPECT_EQ(error_code(w.run(Va)), P | Rsvd) << "level " << level;
  }
}

// AMD APM vol. 2 §5.3.3: bits 8:7 of a PML4E (and a PML5E) must be zero; Intel's SDM
// ignores bit 8 there. Neither reserves it in a non-leaf PDPTE or PDE.
TEST(VendorRules, Bit8OfTheTopLevelsIsReservedOnAmdOnly) {
  for (const bool amd : {false, true}) {
    CpuFeatures f;
    f.la57 = true;
    f.amd = amd;
    for (unsigned level = 1; level <= 5; ++level) {
      World w(PagingMode::Level5, f);
      w.builder.map(Linear(Va), GuestPhys(0x7000), 0x1000, PageSize::Size4K, Rw);
      w.builder.write_entry(Linear(Va), level,
                            w.builder.read_entry(Linear(Va), level) | Pte::Global);
      const bool reserved = amd && level >= 4;
      if (reserved) {
        EXPECT_EQ(error_code(w.run(Va)), P | Rsvd) << "level " << level;
        EXPECT_EQ(error_code(w.run(Va, AccessType::Write)), P | W | Rsvd) << "level " << level;
      } else {
        EXPECT_NE(translation(w.run(Va)), nullptr) << "amd " << amd << " level " << level;
      }
    }
  }
}

TEST(HugePages, OneGigLeafTranslatesWithTheFeature) {
  CpuFeatures f;
  f.page1g = true;
  World w(PagingMode::Level4, f);
  w.builder.map(Linear(0x4000'0000), GuestPhys(0x8000'0000), 0x4000'0000, PageSize::Size1G, Rw);
  const Walk walk = w.run(0x4123'4567);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0x8123'4567u);
  EXPECT_EQ(translation(walk)->page_size, PageSize::Size1G);
  EXPECT_EQ(walk.steps.size(), 2u);
}

TEST(HugePages, OneGigLeafWithoutTheFeatureIsReserved) {
  CpuFeatures with;
  with.page1g = true;
  World w(PagingMode::Level4, with);
  w.builder.map(Linear(0x4000'0000), GuestPhys(0x8000'0000), 0x4000'0000, PageSize::Size1G, Rw);
  w.state.features.page1g = false;
  EXPECT_EQ(error_code(w.run(0x4123'4567)), P | Rsvd);
}

TEST(HugePages, OneGigFrameBits29To13AreReserved) {
  CpuFeatures f;
  f.page1g = true;
  for (unsigned b : {13u, 20u, 29u}) {
    World w(PagingMode::Level4, f);
    w.builder.map(Linear(0x4000'0000), GuestPhys(0x8000'0000), 0x4000'0000, PageSize::Size1G, Rw);
    w.builder.write_entry(Linear(0x4000'0000), 3,
                          w.builder.read_entry(Linear(0x4000'0000), 3) | bit(b));
    EXPECT_EQ(error_code(w.run(0x4000'0000)), P | Rsvd) << "bit " << b;
  }
}

TEST(HugePages, TwoMegFrameBits20To13AreReservedButPatBit12IsNot) {
  World w(PagingMode::Level4);
  w.builder.map(Linear(0x20'0000), GuestPhys(0x60'0000), 0x20'0000, PageSize::Size2M,
                Rw | Pte::LargePat);
  const Walk ok = w.run(0x20'1234);
  ASSERT_NE(translation(ok), nullptr) << ok.fault_reason;
  EXPECT_EQ(translation(ok)->physical.value(), 0x60'1234u);
  for (unsigned b : {13u, 20u}) {
    const std::uint64_t e = w.builder.read_entry(Linear(0x20'0000), 2);
    w.builder.write_entry(Linear(0x20'0000), 2, e | bit(b));
    EXPECT_EQ(error_code(w.run(0x20'0000)), P | Rsvd) << "bit " << b;
    w.builder.write_entry(Linear(0x20'0000), 2, e);
  }
}

TEST(NotPresent, StopsAtTheFirstAbsentLevelWithPZero) {
  World w(PagingMode::Level4);
  const Walk walk = w.run(Va, AccessType::Write, Privilege::User);
  EXPECT_EQ(error_code(walk), W | U);
  EXPECT_EQ(walk.steps.size(), 1u);
  EXPECT_EQ(test::page_fault(walk)->cr2.value(), Va);
}

// --- permissions --------------------------------------------------------------------

TEST_F(FourLevel, UserBitIsNeededAtEveryLevel) {
  for (unsigned level = 1; level <= 4; ++level) {
    poke(level, 0, Pte::User);
    EXPECT_EQ(error_code(world.run(Va, AccessType::Read, Privilege::User)), P | U)
        << "level " << level;
    EXPECT_NE(translation(world.run(Va)), nullptr) << "supervisor, level " << level;
    poke(level, Pte::User);
  }
  EXPECT_NE(translation(world.run(Va, AccessType::Read, Privilege::User)), nullptr);
}

TEST_F(FourLevel, WritableBitIsNeededAtEveryLevelForUserWrites) {
  for (unsigned level = 1; level <= 4; ++level) {
    poke(level, 0, Pte::Writable);
    EXPECT_EQ(error_code(world.run(Va, AccessType::Write, Privilege::User)), P | W | U)
        << "level " << level;
    EXPECT_NE(translation(world.run(Va, AccessType::Read, Privilege::User)), nullptr);
    poke(level, Pte::Writable);
  }
}

TEST_F(FourLevel, SupervisorWriteToReadOnlyDependsOnWp) {
  poke(2, 0, Pte::Writable);
  world.state.cr0 |= Cr0::Wp;
  EXPECT_EQ(error_code(world.run(Va, AccessType::Write)), P | W);
  world.state.cr0 &= ~Cr0::Wp;
  EXPECT_NE(translation(world.run(Va, AccessType::Write)), nullptr);
  // WP never helps user writes.
  EXPECT_EQ(error_code(world.run(Va, AccessType::Write, Privilege::User)), P | W | U);
}

TEST_F(FourLevel, XdAtAnyLevelBlocksFetchesWithNxe) {
  for (unsigned level = 1; level <= 4; ++level) {
    poke(level, Pte::NoExecute);
    EXPECT_EQ(error_code(world.run(Va, AccessType::Fetch)), P | I) << "level " << level;
    EXPECT_EQ(error_code(world.run(Va, AccessType::Fetch, Privilege::User)), P | I | U)
        << "level " << level;
    EXPECT_NE(translation(world.run(Va, AccessType::Read)), nullptr);
    poke(level, 0, Pte::NoExecute);
  }
  EXPECT_NE(translation(world.run(Va, AccessType::Fetch)), nullptr);
}

TEST_F(FourLevel, InstructionFetchBitOnlyWithNxeOrSmep) {
  poke(1, 0, Pte::Present);
  EXPECT_EQ(error_code(world.run(Va, AccessType::Fetch)), I);  // NXE on
  world.state.efer &= ~Efer::Nxe;
  EXPECT_EQ(error_code(world.run(Va, AccessType::Fetch)), 0u);
  world.state.cr4 |= Cr4::Smep;
  EXPECT_EQ(error_code(world.run(Va, AccessType::Fetch)), I);
}

TEST_F(FourLevel, SmepBlocksSupervisorFetchFromUserPages) {
  EXPECT_NE(translation(world.run(Va, AccessType::Fetch)), nullptr);
  world.state.cr4 |= Cr4::Smep;
  EXPECT_EQ(error_code(world.run(Va, AccessType::Fetch)), P | I);
  EXPECT_NE(translation(world.run(Va, AccessType::Fetch, Privilege::User)), nullptr);
  poke(3, 0, Pte::User);  // now a supervisor page: SMEP does not apply
  EXPECT_NE(translation(world.run(Va, AccessType::Fetch)), nullptr);
}

TEST_F(FourLevel, SmapBlocksSupervisorDataAccessUnlessAc) {
  world.state.cr4 |= Cr4::Smap;
  EXPECT_EQ(error_code(world.run(Va, AccessType::Read)), P);
  EXPECT_EQ(error_code(world.run(Va, AccessType::Write)), P | W);
  world.state.rflags |= Rflags::Ac;
  EXPECT_NE(translation(world.run(Va, AccessType::Read)), nullptr);
  EXPECT_NE(translation(world.run(Va, AccessType::Write)), nullptr);
  // SMAP does not restrict fetches (SMEP does) nor user accesses.
  world.state.rflags &= ~Rflags::Ac;
  EXPECT_NE(translation(world.run(Va, AccessType::Fetch)), nullptr);
  EXPECT_NE(translation(world.run(Va, AccessType::Read, Privilege::User)), nullptr);
}

TEST_F(FourLevel, SmapAlwaysBlocksImplicitSupervisorAccesses) {
  world.state.cr4 |= Cr4::Smap;
  world.state.rflags |= Rflags::Ac;
  // An implicit access made at CPL3 is a supervisor access: U/S=0 in the error code.
  EXPECT_EQ(error_code(world.run(Va, AccessType::Read, Privilege::User, true)), P);
  EXPECT_EQ(error_code(world.run(Va, AccessType::Write, Privilege::Supervisor, true)), P | W);
}

TEST_F(FourLevel, ProtectionKeyAccessDisableBlocksDataAccess) {
  poke(1, std::uint64_t{5} << Pte::ProtectionKeyShift);
  world.state.cr4 |= Cr4::Pke;
  world.state.pkru = Pkru::access_disable(5);
  EXPECT_EQ(error_code(world.run(Va, AccessType::Read, Privilege::User)), P | U | Pk);
  EXPECT_EQ(error_code(world.run(Va, AccessType::Read)), P | Pk);  // supervisor too
  EXPECT_NE(translation(world.run(Va, AccessType::Fetch, Privilege::User)), nullptr);
  world.state.pkru = Pkru::access_disable(4);  // another key
  EXPECT_NE(translation(world.run(Va, AccessType::Read, Privilege::User)), nullptr);
  world.state.pkru = Pkru::access_disable(5);
  world.state.cr4 &= ~Cr4::Pke;  // keys ignored without CR4.PKE
  EXPECT_NE(translation(world.run(Va, AccessType::Read, Privilege::User)), nullptr);
}

TEST_F(FourLevel, ProtectionKeyWriteDisableAndWp) {
  poke(1, std::uint64_t{3} << Pte::ProtectionKeyShift);
  world.state.cr4 |= Cr4::Pke;
  world.state.pkru = Pkru::write_disable(3);
  EXPECT_NE(translation(world.run(Va, AccessType::Read, Privilege::User)), nullptr);
  EXPECT_EQ(error_code(world.run(Va, AccessType::Write, Privilege::User)), P | W | U | Pk);
  world.state.cr0 |= Cr0::Wp;
  EXPECT_EQ(error_code(world.run(Va, AccessType::Write)), P | W | Pk);
  world.state.cr0 &= ~Cr0::Wp;
  EXPECT_NE(translation(world.run(Va, AccessType::Write)), nullptr);
}

TEST_F(FourLevel, ProtectionKeysIgnoreSupervisorPages) {
  poke(1, std::uint64_t{2} << Pte::ProtectionKeyShift, Pte::User);
  world.state.cr4 |= Cr4::Pke;
  world.state.pkru = Pkru::access_disable(2);
  EXPECT_NE(translation(world.run(Va, AccessType::Read)), nullptr);
}

// SDM §4.7 defines the PK bit by the key rule alone: a fault that a paging right also
// causes still reports PK.
TEST_F(FourLevel, KeysAddPkToPagingRightFaults) {
  poke(1, std::uint64_t{1} << Pte::ProtectionKeyShift, Pte::Writable);
  world.state.cr4 |= Cr4::Pke;
  world.state.pkru = Pkru::write_disable(1);
  const Walk w = world.run(Va, AccessType::Write, Privilege::User);
  EXPECT_EQ(error_code(w), P | W | U | Pk);
  EXPECT_EQ(w.fault_reason,
            "user write to a read-only page (R/W=0 at some level); and PKRU.WD1=1 forbids "
            "writes to key 1");
}

// --- PAE ---------------------------------------------------------------------------

struct PaeWorld : ::testing::Test {
  static constexpr std::uint64_t V = 0xC020'1000;  // PDPT 3, PD 1, PT 1
  PaeWorld() {
    world.builder.map(Linear(V), GuestPhys(0x9000), 0x1000, PageSize::Size4K, Rw | Us);
    world.reload_pdptes();
  }
  GuestPhys pdpte_address() const { return world.builder.root() + 3 * 8; }
  World world{PagingMode::Pae};
};

TEST_F(PaeWorld, TranslatesThroughThePdpteRegisters) {
  const Walk w = world.run(V + 0x34);
  ASSERT_NE(translation(w), nullptr) << w.fault_reason;
  EXPECT_EQ(translation(w)->physical.value(), 0x9034u);
  ASSERT_EQ(w.steps.size(), 3u);
  EXPECT_EQ(w.steps[0].intel_name, "PDPTE");
  EXPECT_EQ(w.steps[0].index, 3u);
  // The registers, not memory, are used until the next MOV CR3.
  world.memory.write64(pdpte_address(), 0);
  EXPECT_NE(translation(world.run(V)), nullptr);
  world.reload_pdptes();
  EXPECT_EQ(error_code(world.run(V)), 0u);
}

TEST_F(PaeWorld, PdpteReservedBitsFaultAtLoadWithGp) {
  const std::uint64_t good = world.memory.read64(pdpte_address());
  for (std::uint64_t bad : {bit(1), bit(2), bit(5), bit(8), bit(48), bit(63)}) {
    world.memory.write64(pdpte_address(), good | bad);
    CpuState s = world.state;
    const auto gp = load_pdptes(world.memory, s);
    ASSERT_TRUE(gp.has_value()) << std::hex << bad;
    EXPECT_EQ(gp->error_code, 0u);
    EXPECT_EQ(s.pdptes, world.state.pdptes);  // unchanged
  }
  // A not-present PDPTE may hold anything.
  world.memory.write64(pdpte_address(), bit(1) | bit(63));
  EXPECT_FALSE(load_pdptes(world.memory, world.state).has_value());
}

// MOV CR3 decides with the walker's reserved masks and words only a refusal: every bit
// of a present PDPTE is refused exactly where decode_entry names a reserved bit, and the
// refusal says which rule.
TEST_F(PaeWorld, PdpteLoadRefusesExactlyWhatTheDecodingCallsReserved) {
  const std::uint64_t good = world.memory.read64(pdpte_address());
  CpuState pae = world.state;
  for (unsigned b = 1; b < 64; ++b) {
    const std::uint64_t value = good | bit(b);
    world.memory.write64(pdpte_address(), value);
    const auto decoded = decode_entry(pae, 3, value);
    CpuState s = world.state;
    const auto gp = load_pdptes(world.memory, s);
    EXPECT_EQ(gp.has_value(), !decoded.violations.empty()) << "bit " << b;
    if (gp && !decoded.violations.empty()) {
      EXPECT_NE(gp->reason.find(decoded.violations.front().reason), std::string::npos)
          << gp->reason;
    }
  }
}

TEST_F(PaeWorld, PdpteIgnoredBitsAreAccepted) {
  world.memory.write64(pdpte_address(), world.memory.read64(pdpte_address()) | bits(9, 11));
  EXPECT_FALSE(load_pdptes(world.memory, world.state).has_value());
}

TEST_F(PaeWorld, PdeBitsAboveMaxphyaddrUpTo62AreReserved) {
  for (unsigned b : {48u, 52u, 62u}) {
    const std::uint64_t e = world.builder.read_entry(Linear(V), 2);
    world.builder.write_entry(Linear(V), 2, e | bit(b));
    EXPECT_EQ(error_code(world.run(V)), P | Rsvd) << "bit " << b;
    world.builder.write_entry(Linear(V), 2, e);
  }
}

TEST_F(PaeWorld, XdWorksWithNxeAndIsReservedWithout) {
  const std::uint64_t e = world.builder.read_entry(Linear(V), 1);
  world.builder.write_entry(Linear(V), 1, e | Pte::NoExecute);
  EXPECT_EQ(error_code(world.run(V, AccessType::Fetch)), P | I);
  world.state.efer &= ~Efer::Nxe;
  EXPECT_EQ(error_code(world.run(V, AccessType::Fetch)), P | Rsvd);
}

TEST(PaeHuge, TwoMegPage) {
  World w(PagingMode::Pae);
  w.builder.map(Linear(0x4000'0000), GuestPhys(0x20'0000), 0x20'0000, PageSize::Size2M, Rw);
  w.reload_pdptes();
  const Walk walk = w.run(0x401F'FFFF);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0x3F'FFFFu);
  EXPECT_EQ(translation(walk)->page_size, PageSize::Size2M);
}

TEST(PaeAddresses, WiderThan32BitsIsAnError) {
  World w(PagingMode::Pae);
  EXPECT_THROW(w.run(0x1'0000'0000), std::invalid_argument);
}

// --- 32-bit paging -----------------------------------------------------------------

TEST(ThirtyTwoBit, FourKPageThroughTwoLevels) {
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0xC080'1000), GuestPhys(0x0012'3000), 0x1000, PageSize::Size4K, Rw);
  const Walk walk = w.run(0xC080'1ABC);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0x12'3ABCu);
  ASSERT_EQ(walk.steps.size(), 2u);
  EXPECT_EQ(walk.steps[0].index, 0x302u);
  EXPECT_EQ(walk.steps[0].entry_address, w.builder.root() + 0x302 * 4);
  EXPECT_EQ(walk.steps[0].linux_name, "PGD");
  EXPECT_EQ(walk.steps[1].linux_name, "PTE");
}

TEST(ThirtyTwoBit, FourMegPageWithPse) {
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0x0080'0000), GuestPhys(0x0400'0000), 0x40'0000, PageSize::Size4M, Rw);
  const Walk walk = w.run(0x00BF'FFFF);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0x043F'FFFFu);
  EXPECT_EQ(translation(walk)->page_size, PageSize::Size4M);
}

TEST(ThirtyTwoBit, PsIsIgnoredWithoutCr4Pse) {
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0x0080'0000), GuestPhys(0x0400'0000), 0x40'0000, PageSize::Size4M, Rw);
  w.state.cr4 &= ~Cr4::Pse;
  // The PDE is now read as a pointer to a page table at 0x0400'0000 (bits 31:12).
  w.memory.bytes().resize(0x0400'1000);
  w.memory.write32(GuestPhys(0x0400'0000 + 0x3FF * 4), 0x5000 | Pte32::Present);
  const Walk walk = w.run(0x00BF'F123);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0x5123u);
  EXPECT_EQ(walk.steps.size(), 2u);
}

TEST(ThirtyTwoBit, Pse36PutsBits20To13AbovePhysicalBit32) {
  World w(PagingMode::Bits32);  // MAXPHYADDR 48 -> M = 40
  w.builder.map(Linear(0x0040'0000), GuestPhys(0xAB'0040'0000), 0x40'0000, PageSize::Size4M, Rw);
  const std::uint32_t pde = w.memory.read32(w.builder.entry_address(Linear(0x0040'0000), 2));
  EXPECT_EQ((pde >> 13) & 0xFF, 0xABu);
  const Walk walk = w.run(0x0040'1234);
  ASSERT_NE(translation(walk), nullptr) << walk.fault_reason;
  EXPECT_EQ(translation(walk)->physical.value(), 0xAB'0040'1234u);
}

TEST(ThirtyTwoBit, Bit21OfA4MegPdeIsReserved) {
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0x0040'0000), GuestPhys(0x0040'0000), 0x40'0000, PageSize::Size4M, Rw);
  const GuestPhys pde = w.builder.entry_address(Linear(0x0040'0000), 2);
  w.memory.write32(pde, w.memory.read32(pde) | static_cast<std::uint32_t>(bit(21)));
  EXPECT_EQ(error_code(w.run(0x0040'0000)), P | Rsvd);
}

TEST(ThirtyTwoBit, Pse36BitsBeyondMaxphyaddrAreReserved) {
  CpuFeatures f;
  f.maxphyaddr = 36;  // bits 16:13 hold physical 35:32; 21:17 reserved
  World w(PagingMode::Bits32, f);
  w.builder.map(Linear(0x0040'0000), GuestPhys(0xF'0040'0000), 0x40'0000, PageSize::Size4M, Rw);
  ASSERT_NE(translation(w.run(0x0040'0000)), nullptr);
  const GuestPhys pde = w.builder.entry_address(Linear(0x0040'0000), 2);
  w.memory.write32(pde, w.memory.read32(pde) | static_cast<std::uint32_t>(bit(17)));
  EXPECT_EQ(error_code(w.run(0x0040'0000)), P | Rsvd);
}

TEST(ThirtyTwoBit, WithoutPse36AllOfBits21To13AreReserved) {
  CpuFeatures f;
  f.pse36 = false;
  World w(PagingMode::Bits32, f);
  w.builder.map(Linear(0x0040'0000), GuestPhys(0x0040'0000), 0x40'0000, PageSize::Size4M, Rw);
  const GuestPhys pde = w.builder.entry_address(Linear(0x0040'0000), 2);
  w.memory.write32(pde, w.memory.read32(pde) | static_cast<std::uint32_t>(bit(13)));
  EXPECT_EQ(error_code(w.run(0x0040'0000)), P | Rsvd);
}

TEST(ThirtyTwoBit, NoXdSoFetchErrorCodeHasIOnlyWithSmep) {
  World w(PagingMode::Bits32);
  w.state.efer |= Efer::Nxe;  // irrelevant to 32-bit paging
  EXPECT_EQ(error_code(w.run(0x1000, AccessType::Fetch)), 0u);
  w.state.cr4 |= Cr4::Smep;
  EXPECT_EQ(error_code(w.run(0x1000, AccessType::Fetch)), I);
}

TEST(ThirtyTwoBit, UserAndWritableAccumulateOverPdeAndPte) {
  World w(PagingMode::Bits32);
  w.builder.map(Linear(0x1000), GuestPhys(0x2000), 0x1000, PageSize::Size4K, Rw | Us);
  EXPECT_NE(translation(w.run(0x1000, AccessType::Write, Privilege::User)), nullptr);
  const GuestPhys pde = w.builder.entry_address(Linear(0x1000), 2);
  w.memory.write32(pde, w.memory.read32(pde) & ~Pte32::Writable);
  EXPECT_EQ(error_code(w.run(0x1000, AccessType::Write, Privilege::User)), P | W | U);
  w.memory.write32(pde, w.memory.read32(pde) & ~Pte32::User);
  EXPECT_EQ(error_code(w.run(0x1000, AccessType::Read, Privilege::User)), P | U);
}

}  // namespace
}  // namespace pagelab::paging

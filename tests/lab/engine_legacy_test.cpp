// The experiment engine in 32-bit and PAE paging (batch32.S, user32.S), run on QEMU TCG
// (skipped, naming the binary, where qemu-system-x86_64 is missing), and the refusal of
// those modes on a KVM that cannot run them (PVM), which must be a reason, not a crash.
// Every expected error code is the SDM's (§4.7), and the engine's own oracle check must
// agree on every operation.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "lab/engine_fixture.hpp"
#include "needs_backend.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::test {
namespace {

using lab::CheckedResult;
using lab::Op;
using lab::OpAccess;
using lab::ProbeStatus;
using paging::AccessType;
using paging::GuestPhys;
using paging::Linear;
using paging::PageSize;
using paging::PagingMode;
using paging::PfError;
using paging::Privilege;
using paging::Pte;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint32_t kVectorPf = 14;
// Experiment pages, in one page table and away from the probe and its user alias.
constexpr Linear kUserRw{0x10000000};   // U=1, R/W=1
constexpr Linear kUserRo{0x10001000};   // U=1, R/W=0
constexpr Linear kSuperRw{0x10002000};  // U=0, R/W=1
constexpr Linear kSuperRo{0x10003000};  // U=0, R/W=0
constexpr Linear kNx{0x10004000};       // U=1, R/W=1, XD=1 (PAE only)
constexpr Linear kAbsent{0x10005000};   // not present, same PT
constexpr Linear kBig{0x40000000};      // a 4 MiB (32-bit) or 2 MiB (PAE) page

// The engine fixture's access, 4 bytes wide unless told: the operand size of 32-bit code.
OpAccess access(Linear va, AccessType type, Privilege priv, unsigned size = 4,
                std::uint64_t value = 0) {
  return EngineTest::access(va, type, priv, size, value);
}

class EngineLegacy : public ::testing::TestWithParam<PagingMode> {
 protected:
  void SetUp() override {
    if (auto why = qemu_missing()) GTEST_SKIP() << *why;
    lab::LabOptions options;
    options.backend = lab::BackendKind::Qemu;
    lab_ = std::make_unique<lab::Lab>(options);
  }
  PagingMode mode() const { return GetParam(); }
  bool pae() const { return mode() == PagingMode::Pae; }

  lab::Engine& start() {
    engine_ = std::make_unique<lab::Engine>(*lab_, lab::EngineOptions{.mode = mode()});
    auto& s = engine_->space();
    frame_ = s.map(kUserRw, std::nullopt, kPage, PageSize::Size4K, Pte::User | Pte::Writable);
    s.map(kUserRo, std::nullopt, kPage, PageSize::Size4K, Pte::User);
    s.map(kSuperRw, std::nullopt, kPage, PageSize::Size4K, Pte::Writable);
    s.map(kSuperRo, std::nullopt, kPage, PageSize::Size4K, 0);
    if (pae()) {
      s.map(kNx, std::nullopt, kPage, PageSize::Size4K, Pte::User | Pte::Writable | Pte::NoExecute);
    }
    s.map(kBig, std::nullopt, pae() ? 2 << 20 : 4 << 20,
          pae() ? PageSize::Size2M : PageSize::Size4M, Pte::Writable);
    engine_->start();
    return *engine_;
  }
  lab::Engine& engine() { return *engine_; }

  // Runs `ops` and requires the engine's oracle check to agree on every one.
  std::vector<CheckedResult> run(const std::vector<Op>& ops) {
    auto results = engine().run(ops);
    EXPECT_EQ(results.size(), ops.size());
    for (const auto& r : results) EXPECT_TRUE(r.agrees) << r.summary() << "\n" << r.report;
    EXPECT_TRUE(engine().ad_violations().empty());
    return results;
  }
  static void expect_pf(const CheckedResult& r, std::uint32_t error_code, Linear cr2) {
    EXPECT_EQ(r.observed.status, ProbeStatus::Fault) << r.summary();
    EXPECT_EQ(r.observed.vector, kVectorPf) << r.summary();
    EXPECT_EQ(r.observed.error_code, error_code) << r.summary();
    EXPECT_EQ(r.observed.cr2, cr2.value()) << r.summary();
  }
  static void expect_ok(const CheckedResult& r) {
    EXPECT_EQ(r.observed.status, ProbeStatus::Ok) << r.summary();
  }

  std::unique_ptr<lab::Lab> lab_;
  std::unique_ptr<lab::Engine> engine_;
  GuestPhys frame_;
};

TEST_P(EngineLegacy, EntersTheModeTheOracleAssumes) {
  auto& e = start();
  EXPECT_EQ(e.cpu_state().mode(), mode());
  const auto r = run({lab::OpReadControl{}});
  EXPECT_EQ(r[0].observed.cr3, e.space().root().value());
  EXPECT_NE(r[0].observed.cr0 & paging::Cr0::Pg, 0u);
}

TEST_P(EngineLegacy, SupervisorAndUserAccessesSucceedWhereAllowed) {
  start();
  lab_->physical().write64(frame_, 0x1122334455667788);
  const auto r = run({
      access(kUserRw, AccessType::Read, Privilege::Supervisor, 8),
      access(kUserRw, AccessType::Read, Privilege::User, 8),
      access(kUserRw, AccessType::Write, Privilege::User, 4, 0xabcd),
      access(kUserRw, AccessType::Read, Privilege::User, 2),
      access(kSuperRw, AccessType::Write, Privilege::Supervisor, 1, 0x5a),
      access(kBig + 0x123458, AccessType::Write, Privilege::Supervisor, 8, 0x0102030405060708),
      access(kBig + 0x123458, AccessType::Read, Privilege::Supervisor, 8),
  });
  for (const auto& x : r) expect_ok(x);
  EXPECT_EQ(r[0].observed.value, 0x1122334455667788u);
  EXPECT_EQ(r[1].observed.value, 0x1122334455667788u);
  EXPECT_EQ(r[3].observed.value, 0xabcdu);
  EXPECT_EQ(r[6].observed.value, 0x0102030405060708u);
}

TEST_P(EngineLegacy, PageFaultsCarryTheSdmErrorCodeAtCpl0AndCpl3) {
  start();
  using E = PfError;
  const auto r = run({
      access(kSuperRw, AccessType::Read, Privilege::User),         // U/S
      access(kSuperRw, AccessType::Write, Privilege::User),        // U/S, write
      access(kUserRo, AccessType::Write, Privilege::User),         // R/W at CPL3
      access(kSuperRo, AccessType::Write, Privilege::Supervisor),  // CR0.WP=1
      access(kAbsent, AccessType::Read, Privilege::Supervisor),    // not present
      access(kAbsent, AccessType::Write, Privilege::User),         // not present, user write
      access(kSuperRw, AccessType::Fetch, Privilege::User),        // user fetch, U/S=0
      access(kUserRw, AccessType::Read, Privilege::User),          // the batch goes on at CPL3
  });
  // I/D is reported only with NX enabled (PAE with EFER.NXE) or SMEP (SDM §4.7).
  const std::uint32_t fetch = pae() ? E::I : 0;
  expect_pf(r[0], E::P | E::U, kSuperRw);
  expect_pf(r[1], E::P | E::W | E::U, kSuperRw);
  expect_pf(r[2], E::P | E::W | E::U, kUserRo);
  expect_pf(r[3], E::P | E::W, kSuperRo);
  expect_pf(r[4], 0, kAbsent);
  expect_pf(r[5], E::W | E::U, kAbsent);
  expect_pf(r[6], E::P | E::U | fetch, kSuperRw);
  expect_ok(r[7]);
}

TEST_P(EngineLegacy, WriteProtectOffLetsSupervisorWriteReadOnlyPages) {
  start();
  const auto cr0 = engine().cpu_state().cr0 & ~paging::Cr0::Wp;
  const auto r = run({
      lab::OpWriteControl{lab::ControlRegister::Cr0, cr0},
      access(kSuperRo, AccessType::Write, Privilege::Supervisor, 4, 7),
      access(kUserRo, AccessType::Write, Privilege::User, 4, 7),  // CPL3 ignores WP
  });
  expect_ok(r[1]);
  expect_pf(r[2], PfError::P | PfError::W | PfError::U, kUserRo);
}

TEST_P(EngineLegacy, AccessedAndDirtyAreReadBack) {
  auto& e = start();
  const unsigned leaf = 1;
  EXPECT_EQ(e.space().read_entry(kUserRw, leaf) & (Pte::Accessed | Pte::Dirty), 0u);
  run({access(kUserRw, AccessType::Read, Privilege::User),
       access(kSuperRw, AccessType::Write, Privilege::Supervisor, 4, 1),
       access(kUserRo, AccessType::Write, Privilege::User)});  // faults: no leaf A
  EXPECT_EQ(e.space().read_entry(kUserRw, leaf) & (Pte::Accessed | Pte::Dirty), Pte::Accessed);
  EXPECT_EQ(e.space().read_entry(kSuperRw, leaf) & (Pte::Accessed | Pte::Dirty),
            Pte::Accessed | Pte::Dirty);
  EXPECT_EQ(e.space().read_entry(kUserRo, leaf) & Pte::Accessed, 0u);
}

TEST_P(EngineLegacy, EntryRewrittenWithoutInvlpgAllowsOldAndNewThenOnlyNew) {
  auto& e = start();
  const auto other = e.space().allocate_frame();
  lab_->physical().write64(frame_, 0x1111);
  lab_->physical().write64(other, 0x2222);
  const auto pte = e.space().entry_address(kUserRw, 1);
  const auto new_pte = other.value() | Pte::Present | Pte::Writable | Pte::User;
  const auto r = run({
      access(kUserRw, AccessType::Read, Privilege::User), lab::OpWriteEntry{pte, new_pte},
      access(kUserRw, AccessType::Read, Privilege::User),  // stale or fresh: both allowed
      lab::OpInvlpg{kUserRw},
      access(kUserRw, AccessType::Read, Privilege::User),  // only the new one
  });
  EXPECT_EQ(r[0].observed.value, 0x1111u);
  EXPECT_EQ(r[2].allowed.size(), 2u);
  EXPECT_TRUE(r[2].observed.value == 0x1111 || r[2].observed.value == 0x2222);
  EXPECT_EQ(r[4].allowed.size(), 1u);
  EXPECT_EQ(r[4].observed.value, 0x2222u);
}

TEST_P(EngineLegacy, AddressesAbove4GiBAreRefusedWithTheReason) {
  start();
  const std::vector<Op> ops{access(Linear(0x1'0000'0000), AccessType::Read, Privilege::Supervisor)};
  try {
    engine().run(ops);
    FAIL() << "a 33-bit address ran in a 32-bit mode";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("4 GiB"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineLegacy,
                         ::testing::Values(PagingMode::Bits32, PagingMode::Pae),
                         [](const auto& info) {
                           return info.param == PagingMode::Bits32 ? std::string("Bits32")
                                                                   : std::string("Pae");
                         });

class EnginePae : public EngineLegacy {};

TEST_P(EnginePae, XdFaultsFetchesWithIdAndReadsSucceed) {
  start();
  const auto r = run({
      access(kNx, AccessType::Fetch, Privilege::Supervisor),
      access(kNx, AccessType::Fetch, Privilege::User),
      access(kNx, AccessType::Read, Privilege::User),
      access(kUserRw, AccessType::Fetch, Privilege::User),  // executable: the stub returns
  });
  expect_pf(r[0], PfError::P | PfError::I, kNx);
  expect_pf(r[1], PfError::P | PfError::U | PfError::I, kNx);
  expect_ok(r[2]);
  expect_ok(r[3]);
}

TEST_P(EnginePae, PdpteChangeTakesEffectAtMovCr3) {
  auto& e = start();
  // PDPTE 0 maps the probe; kUserRw (0x10000000) is under it too, so use kBig's (PDPTE 1).
  const auto pdpte = GuestPhys(e.cpu_state().root().value() + 8);
  const auto old = lab_->physical().read64(pdpte);
  const auto r = run({
      access(kBig, AccessType::Read, Privilege::Supervisor),
      lab::OpWriteEntry{pdpte, 0},  // not present, no MOV CR3 yet
      access(kBig + kPage, AccessType::Read, Privilege::Supervisor),
      lab::OpWriteControl{lab::ControlRegister::Cr3, e.cpu_state().cr3},
      access(kBig, AccessType::Read, Privilege::Supervisor),
      lab::OpWriteEntry{pdpte, old},
      lab::OpWriteControl{lab::ControlRegister::Cr3, e.cpu_state().cr3},
      access(kBig, AccessType::Read, Privilege::Supervisor),
  });
  expect_ok(r[0]);
  // Before MOV CR3 the PDPTE register still maps it (SDM §4.4.1); a CPU without PDPTE
  // registers (AMD) may see the new one: the engine allows that only there.
  EXPECT_GE(r[2].allowed.size(), 1u);
  expect_pf(r[4], 0, kBig);
  expect_ok(r[7]);
}

INSTANTIATE_TEST_SUITE_P(Modes, EnginePae, ::testing::Values(PagingMode::Pae),
                         [](const auto&) { return std::string("Pae"); });

// On KVM: either the platform runs legacy paging (and the engine checks it like on
// QEMU) or it refuses, and start() says so with what the guest saw.
TEST(EngineLegacyKvm, RunsOrIsRefusedWithTheDetectedReason) {
  if (auto why = kvm_missing()) GTEST_SKIP() << *why;
  for (const auto mode : {PagingMode::Bits32, PagingMode::Pae}) {
    lab::Lab lab;
    lab::Engine engine(lab, lab::EngineOptions{.mode = mode});
    engine.space().map(kUserRw, std::nullopt, kPage, PageSize::Size4K, Pte::User | Pte::Writable);
    try {
      engine.start();
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("refused by the platform"), std::string::npos) << what;
      EXPECT_NE(what.find("#GP"), std::string::npos) << what;
      // The probe is left usable, in protected mode without paging.
      EXPECT_EQ(lab.command(PROBE_CMD_REPORT).code_bits, 32u);
      continue;
    }
    const std::vector<Op> ops{access(kUserRw, AccessType::Read, Privilege::User)};
    const auto r = engine.run(ops);
    EXPECT_TRUE(r[0].agrees) << r[0].report;
  }
}

}  // namespace
}  // namespace pagelab::test

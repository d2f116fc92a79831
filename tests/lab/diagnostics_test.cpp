#include "pagelab/lab/machine/diagnostics.hpp"

#include <gtest/gtest.h>

#include <string>

#include "kvm/test_vm.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::lab {
namespace {

using namespace std::chrono_literals;
using paging::Cr0;
using paging::Efer;
using Bytes = std::vector<std::uint8_t>;

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

kvm_sregs protected_32(std::uint64_t cs_base = 0) {
  kvm_sregs sregs{};
  sregs.cr0 = Cr0::Pe | Cr0::Et;
  sregs.cs.selector = 0x08;
  sregs.cs.base = cs_base;
  sregs.cs.limit = 0xffff'ffff;
  sregs.cs.db = 1;
  return sregs;
}

kvm_regs at_rip(std::uint64_t rip) {
  kvm_regs regs{};
  regs.rip = rip;
  regs.rflags = paging::Rflags::Fixed1;
  regs.rax = 0x1234'5678'9abc'def0;
  return regs;
}

// A reader over a fake code region [base, base + bytes.size()), remembering what it
// was asked for.
struct FakeCode {
  FakeCode(std::uint64_t base_address, Bytes code) : base(base_address), bytes(std::move(code)) {}
  std::uint64_t base = 0;
  Bytes bytes;
  std::vector<std::pair<std::uint64_t, std::size_t>> requests;

  CodeReader reader() {
    return [this](std::uint64_t linear, std::size_t len) -> std::optional<Bytes> {
      requests.emplace_back(linear, len);
      if (linear < base || linear - base + len > bytes.size()) {
        return std::nullopt;
      }
      const auto first = bytes.begin() + static_cast<std::ptrdiff_t>(linear - base);
      return Bytes(first, first + static_cast<std::ptrdiff_t>(len));
    };
  }
};

TEST(AbnormalStopKind, OnlyAbnormalExitsHaveOne) {
  EXPECT_FALSE(abnormal_stop_kind(kvm::IoExit{}).has_value());
  EXPECT_FALSE(abnormal_stop_kind(kvm::HltExit{}).has_value());
  EXPECT_FALSE(abnormal_stop_kind(kvm::MmioExit{}).has_value());
  EXPECT_EQ(abnormal_stop_kind(kvm::ShutdownExit{}), "triple fault (SHUTDOWN)");
  EXPECT_EQ(abnormal_stop_kind(kvm::InternalErrorExit{KVM_INTERNAL_ERROR_EMULATION, {}, {}}),
            "KVM internal error (emulation failure)");
  EXPECT_EQ(abnormal_stop_kind(kvm::FailEntryExit{}), "entry failed");
  EXPECT_EQ(abnormal_stop_kind(kvm::HangExit{100ms}), "hang");
}

TEST(CsModeName, EveryMode) {
  kvm_sregs sregs{};
  EXPECT_EQ(cs_mode_name(sregs), "real");
  sregs.cr0 = Cr0::Pe;
  EXPECT_EQ(cs_mode_name(sregs), "16-bit protected");
  sregs.cs.db = 1;
  EXPECT_EQ(cs_mode_name(sregs), "32-bit protected");
  sregs.cr0 |= Cr0::Pg;
  sregs.efer = Efer::Lme | Efer::Lma;
  EXPECT_EQ(cs_mode_name(sregs), "compatibility");
  sregs.cs.db = 0;
  sregs.cs.l = 1;
  EXPECT_EQ(cs_mode_name(sregs), "64-bit");
}

TEST(DescribeAbnormalStop, TripleFaultShowsRegistersModeAndInstruction) {
  FakeCode code{0x8000, {0x90, 0x90, 0x90, 0x0f, 0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}};
  const std::string text =
      describe_abnormal_stop(kvm::ShutdownExit{}, at_rip(0x8003), protected_32(), code.reader());
  EXPECT_TRUE(contains(text, "triple fault (SHUTDOWN)")) << text;
  EXPECT_TRUE(contains(text, "KVM_EXIT_SHUTDOWN")) << text;
  EXPECT_TRUE(contains(text, "RIP=0000000000008003")) << text;
  EXPECT_TRUE(contains(text, "RAX=123456789abcdef0")) << text;
  EXPECT_TRUE(contains(text, "CR0=0000000000000011")) << text;  // PE | ET
  EXPECT_TRUE(contains(text, "32-bit protected")) << text;
  EXPECT_TRUE(contains(text, "ud2")) << text;
  ASSERT_FALSE(code.requests.empty());
  EXPECT_EQ(code.requests.front().first, 0x8003u);
}

TEST(DescribeAbnormalStop, LinearAddressAddsCsBaseOutside64BitMode) {
  // Real mode: CS = 0xf000 -> base 0xf0000; IP 0xfff0 -> linear 0xffff0 (reset vector).
  kvm_sregs real{};
  real.cs.selector = 0xf000;
  real.cs.base = 0xf0000;
  FakeCode code{0xffff0, Bytes(16, 0x90)};
  code.bytes[0] = 0xea;  // jmp far 0xf000:0xe05b
  code.bytes[1] = 0x5b;
  code.bytes[2] = 0xe0;
  code.bytes[3] = 0x00;
  code.bytes[4] = 0xf0;
  const AbnormalStop stop =
      analyse_abnormal_stop(kvm::HangExit{100ms}, at_rip(0xfff0), real, code.reader());
  EXPECT_EQ(stop.code_linear, 0xffff0u);
  EXPECT_EQ(stop.cs_mode, "real");
  EXPECT_EQ(stop.bits, CodeBits::Bits16);
  ASSERT_TRUE(stop.instruction.has_value());
  EXPECT_EQ(stop.instruction->mnemonic, "ljmp");
  EXPECT_EQ(stop.instruction->bytes.size(), 5u);  // 16-bit far pointer: 2 + 2 bytes
}

TEST(DescribeAbnormalStop, CsBaseIsIgnoredIn64BitMode) {
  kvm_sregs sregs{};
  sregs.cr0 = Cr0::Pe | Cr0::Pg;
  sregs.efer = Efer::Lme | Efer::Lma;
  sregs.cs.l = 1;
  sregs.cs.base = 0x1000'0000;  // the CPU treats it as 0 (SDM vol. 3 §3.4.4)
  FakeCode code{0xffff'8000'0000'0000, Bytes(16, 0)};
  code.bytes[0] = 0x0f;  // vmmcall
  code.bytes[1] = 0x01;
  code.bytes[2] = 0xd9;
  const AbnormalStop stop = analyse_abnormal_stop(
      kvm::HangExit{100ms}, at_rip(0xffff'8000'0000'0000), sregs, code.reader());
  EXPECT_EQ(stop.cs_mode, "64-bit");
  EXPECT_EQ(stop.code_linear, 0xffff'8000'0000'0000u);
  ASSERT_TRUE(stop.instruction.has_value());
  EXPECT_EQ(stop.instruction->text(), "vmmcall");
}

TEST(DescribeAbnormalStop, PrefersTheBytesKvmReported) {
  bool asked = false;
  const CodeReader reader = [&](std::uint64_t, std::size_t) -> std::optional<Bytes> {
    asked = true;
    return Bytes{0x90};
  };
  const kvm::InternalErrorExit internal{KVM_INTERNAL_ERROR_EMULATION, {1, 2, 3}, {0xcc}};
  const AbnormalStop stop = analyse_abnormal_stop(internal, at_rip(0x8000), protected_32(), reader);
  EXPECT_FALSE(asked);
  EXPECT_EQ(stop.kind, "KVM internal error (emulation failure)");
  EXPECT_EQ(stop.bytes_source, "kvm");
  ASSERT_TRUE(stop.instruction.has_value());
  EXPECT_EQ(stop.instruction->text(), "int3");
}

TEST(DescribeAbnormalStop, SaysSoWhenNoBytesAreAvailable) {
  const CodeReader nothing = [](std::uint64_t, std::size_t) -> std::optional<Bytes> {
    return std::nullopt;
  };
  const std::string text =
      describe_abnormal_stop(kvm::ShutdownExit{}, at_rip(0x8000), protected_32(), nothing);
  EXPECT_TRUE(contains(text, "instruction bytes unavailable")) << text;
  EXPECT_TRUE(contains(text, "RIP=0000000000008000")) << text;
  // An empty reader is allowed too.
  const std::string without_reader =
      describe_abnormal_stop(kvm::ShutdownExit{}, at_rip(0x8000), protected_32(), CodeReader{});
  EXPECT_TRUE(contains(without_reader, "instruction bytes unavailable")) << without_reader;
}

TEST(DescribeAbnormalStop, RetriesUpToThePageEnd) {
  // Code at the last 2 bytes of a page whose next page is unreadable.
  FakeCode code{0x7000, Bytes(0x1000, 0x90)};
  code.bytes[0xffe] = 0x0f;
  code.bytes[0xfff] = 0x0b;
  const AbnormalStop stop =
      analyse_abnormal_stop(kvm::ShutdownExit{}, at_rip(0x7ffe), protected_32(), code.reader());
  ASSERT_EQ(code.requests.size(), 2u);
  EXPECT_EQ(code.requests[1], (std::pair<std::uint64_t, std::size_t>{0x7ffe, 2}));
  ASSERT_TRUE(stop.instruction.has_value());
  EXPECT_EQ(stop.instruction->text(), "ud2");
}

TEST(AbnormalStopJson, SameFacts) {
  FakeCode code{0x8000, Bytes(16, 0)};
  code.bytes[0] = 0x0f;
  code.bytes[1] = 0x0b;
  const auto json =
      abnormal_stop_json(kvm::ShutdownExit{}, at_rip(0x8000), protected_32(), code.reader());
  EXPECT_EQ(json.at("kind"), "triple fault (SHUTDOWN)");
  EXPECT_EQ(json.at("mode"), "32-bit protected");
  EXPECT_EQ(json.at("registers").at("rip"), "0x8000");
  EXPECT_EQ(json.at("registers").at("rax"), "0x123456789abcdef0");
  EXPECT_EQ(json.at("control").at("cr0"), "0x11");
  EXPECT_EQ(json.at("cs").at("selector"), "0x8");
  EXPECT_EQ(json.at("code").at("bits"), 32);
  EXPECT_EQ(json.at("code").at("bytes_source"), "guest memory");
  EXPECT_EQ(json.at("code").at("instruction").at("mnemonic"), "ud2");

  const CodeReader nothing = [](std::uint64_t, std::size_t) -> std::optional<Bytes> {
    return std::nullopt;
  };
  const auto none =
      abnormal_stop_json(kvm::HangExit{250ms}, at_rip(0x8000), protected_32(), nothing);
  EXPECT_TRUE(none.at("code").at("instruction").is_null());
  EXPECT_TRUE(none.at("code").at("bytes_source").is_null());
  EXPECT_EQ(none.at("exit_detail").at("after_ms"), 250);
}

// After INIT (CS:RIP F000:FFF0) the registers are not the fault's: nothing is
// disassembled and the report says the state is lost.
TEST(DescribeAbnormalStop, ShutdownWithTheInitStateSaysTheStateIsLost) {
  kvm_regs regs{};
  regs.rip = 0xfff0;
  kvm_sregs sregs{};
  sregs.cs.selector = 0xf000;
  sregs.cs.base = 0xffff0000;
  sregs.cr0 = Cr0::Et | Cr0::Cd | Cr0::Nw;
  bool read = false;
  const CodeReader reader = [&](std::uint64_t, std::size_t) -> std::optional<Bytes> {
    read = true;
    return Bytes{0xea, 0x5b, 0xe0, 0x00, 0xf0};  // the BIOS's jmp far f000:e05b
  };
  const auto stop = analyse_abnormal_stop(kvm::ShutdownExit{}, regs, sregs, reader);
  EXPECT_TRUE(stop.state_lost);
  EXPECT_FALSE(read);
  EXPECT_FALSE(stop.instruction.has_value());
  const auto text = describe(stop);
  EXPECT_TRUE(contains(text, "the state at the fault is lost")) << text;
  EXPECT_TRUE(contains(text, "not the fault's")) << text;
  EXPECT_FALSE(contains(text, "code at CS:RIP")) << text;
  const auto json = to_json(stop);
  EXPECT_TRUE(json.at("state_lost").get<bool>());
  EXPECT_TRUE(json.at("code").is_null());
}

TEST(DescribeAbnormalStop, InitStateIsOnlyLostStateAfterAShutdown) {
  kvm_regs regs{};
  regs.rip = 0xfff0;
  kvm_sregs sregs{};
  sregs.cs.selector = 0xf000;
  sregs.cs.base = 0xffff0000;
  // A hang at the reset vector is a guest that really runs there.
  EXPECT_FALSE(analyse_abnormal_stop(kvm::HangExit{}, regs, sregs, {}).state_lost);
  // Real mode elsewhere after a shutdown (QEMU, kvm_intel keep the state): not lost.
  sregs.cs.selector = 0;
  sregs.cs.base = 0;
  regs.rip = 0x8000;
  EXPECT_FALSE(analyse_abnormal_stop(kvm::ShutdownExit{}, regs, sregs, {}).state_lost);
}

// End to end on the real vCPU: the stop is diagnosed from live registers and memory.
TEST(DescribeAbnormalStop, LiveTripleFault) {
  PAGELAB_REQUIRE_KVM();
  kvm::testing::TestVm t;
  t.enter_protected_mode_32(kvm::testing::kCodeGpa.value());
  t.load(kvm::testing::kCodeGpa, {
                                     0x0f, 0x0b,  // ud2
                                 });
  const kvm::Exit exit = t.vcpu.run(2000ms);
  ASSERT_TRUE(std::holds_alternative<kvm::ShutdownExit>(exit)) << kvm::describe(exit);
  // No paging: linear = guest-physical.
  const CodeReader read = [&](std::uint64_t linear, std::size_t len) -> std::optional<Bytes> {
    const paging::GuestPhys gpa{linear};
    if (!t.memory.contains(gpa, len)) {
      return std::nullopt;
    }
    const std::uint8_t* p = t.memory.host(gpa, len);
    return Bytes(p, p + len);
  };
  const AbnormalStop stop = analyse_abnormal_stop(exit, t.vcpu.regs(), t.vcpu.sregs(), read);
  EXPECT_EQ(stop.kind, "triple fault (SHUTDOWN)");
  // kvm_amd INITs the vCPU on a shutdown intercept before reporting it (svm.c,
  // shutdown_interception()): there the state is lost, and must be called lost.
  if (kvm::detect_flavour().name == "kvm_amd") {
    EXPECT_TRUE(stop.state_lost) << describe(stop);
    EXPECT_FALSE(stop.instruction.has_value()) << describe(stop);
    return;
  }
  EXPECT_FALSE(stop.state_lost) << describe(stop);
  EXPECT_EQ(stop.cs_mode, "32-bit protected");
  ASSERT_TRUE(stop.instruction.has_value()) << describe(stop);
  // A fault leaves RIP at the faulting instruction (SDM vol. 3 §6.5).
  EXPECT_EQ(stop.instruction->text(), "ud2") << describe(stop);
}

}  // namespace
}  // namespace pagelab::lab

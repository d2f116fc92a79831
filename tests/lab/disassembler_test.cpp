#include "pagelab/lab/machine/disassembler.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "pagelab/paging/bits.hpp"

namespace pagelab::lab {
namespace {

using Bytes = std::vector<std::uint8_t>;

DisassembledInstruction only(const Bytes& bytes, CodeBits bits, std::uint64_t address = 0x1000) {
  auto result = disassemble(bytes, address, bits, 1);
  if (result.size() != 1) {
    throw std::runtime_error("expected exactly one instruction");
  }
  return result.front();
}

TEST(Disassemble, VmmcallIn64BitMode) {
  const auto insn = only({0x0f, 0x01, 0xd9}, CodeBits::Bits64);
  EXPECT_EQ(insn.mnemonic, "vmmcall");
  EXPECT_EQ(insn.bytes, (Bytes{0x0f, 0x01, 0xd9}));
  EXPECT_EQ(insn.address, 0x1000u);
}

TEST(Disassemble, OperandSizePrefixFlipsBetween16And32Bit) {
  // 66 B8 imm: the 0x66 prefix selects the operand size that is not the default
  // (SDM vol. 1 §3.6), so the immediate is 4 bytes in 16-bit code, 2 in 32-bit.
  const Bytes bytes = {0x66, 0xb8, 0x34, 0x12, 0x00, 0x00};
  const auto in16 = only(bytes, CodeBits::Bits16);
  EXPECT_EQ(in16.text(), "mov eax, 0x1234");
  EXPECT_EQ(in16.bytes.size(), 6u);
  const auto in32 = only(bytes, CodeBits::Bits32);
  EXPECT_EQ(in32.text(), "mov ax, 0x1234");
  EXPECT_EQ(in32.bytes.size(), 4u);
  EXPECT_EQ(in32.hex_bytes(), "66 b8 34 12");
}

TEST(Disassemble, Ud2InEveryMode) {
  for (const CodeBits bits : {CodeBits::Bits16, CodeBits::Bits32, CodeBits::Bits64}) {
    const auto insn = only({0x0f, 0x0b}, bits);
    EXPECT_EQ(insn.text(), "ud2") << static_cast<unsigned>(bits);
    EXPECT_TRUE(insn.operands.empty());
  }
}

TEST(Disassemble, IntWithImmediate) {
  const auto insn = only({0xcd, 0x03}, CodeBits::Bits32);
  EXPECT_EQ(insn.mnemonic, "int");
  EXPECT_EQ(insn.operands, "3");
}

TEST(Disassemble, SeveralInstructionsUpToMax) {
  const Bytes bytes = {
      0x90,        // nop
      0xe6, 0xe9,  // out 0xe9, al
      0xf4,        // hlt
  };
  const auto all = disassemble(bytes, 0x8000, CodeBits::Bits16, 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].text(), "nop");
  EXPECT_EQ(all[1].address, 0x8001u);
  EXPECT_EQ(all[1].mnemonic, "out");
  EXPECT_EQ(all[2].address, 0x8003u);
  EXPECT_EQ(all[2].text(), "hlt");
  EXPECT_EQ(disassemble(bytes, 0x8000, CodeBits::Bits16, 2).size(), 2u);
}

TEST(Disassemble, InvalidOrTruncatedGivesNothing) {
  // PUSH ES (06) does not exist in 64-bit mode (SDM vol. 2, one-byte opcode map).
  EXPECT_TRUE(disassemble(Bytes{0x06}, 0, CodeBits::Bits64).empty());
  EXPECT_EQ(only({0x06}, CodeBits::Bits32).text(), "push es");
  // B8 needs a 4-byte immediate in 32-bit code.
  EXPECT_TRUE(disassemble(Bytes{0xb8, 0x34, 0x12}, 0, CodeBits::Bits32).empty());
  EXPECT_TRUE(disassemble(Bytes{}, 0, CodeBits::Bits32).empty());
}

kvm_sregs sregs_with(std::uint64_t cr0, std::uint64_t efer, std::uint8_t cs_l, std::uint8_t cs_db) {
  kvm_sregs sregs{};
  sregs.cr0 = cr0;
  sregs.efer = efer;
  sregs.cs.l = cs_l;
  sregs.cs.db = cs_db;
  return sregs;
}

TEST(CodeBitsOf, RealModeIs16WhateverCsSays) {
  EXPECT_EQ(code_bits_of(sregs_with(0, 0, 0, 1)), CodeBits::Bits16);
  EXPECT_EQ(code_bits_of(sregs_with(0, 0, 0, 0)), CodeBits::Bits16);
}

TEST(CodeBitsOf, ProtectedModeFollowsCsDb) {
  using paging::Cr0;
  EXPECT_EQ(code_bits_of(sregs_with(Cr0::Pe, 0, 0, 1)), CodeBits::Bits32);
  EXPECT_EQ(code_bits_of(sregs_with(Cr0::Pe, 0, 0, 0)), CodeBits::Bits16);
  // CS.L means nothing outside IA-32e mode.
  EXPECT_EQ(code_bits_of(sregs_with(Cr0::Pe, 0, 1, 1)), CodeBits::Bits32);
}

TEST(CodeBitsOf, LongModeNeedsLmaAndCsL) {
  using paging::Cr0;
  using paging::Efer;
  const std::uint64_t cr0 = Cr0::Pe | Cr0::Pg;
  const std::uint64_t efer = Efer::Lme | Efer::Lma;
  EXPECT_EQ(code_bits_of(sregs_with(cr0, efer, 1, 0)), CodeBits::Bits64);
  // Compatibility mode: CS.L = 0, bitness from CS.D.
  EXPECT_EQ(code_bits_of(sregs_with(cr0, efer, 0, 1)), CodeBits::Bits32);
  EXPECT_EQ(code_bits_of(sregs_with(cr0, efer, 0, 0)), CodeBits::Bits16);
  // LME without LMA (paging not yet on) is not IA-32e mode.
  EXPECT_EQ(code_bits_of(sregs_with(Cr0::Pe, Efer::Lme, 1, 1)), CodeBits::Bits32);
}

}  // namespace
}  // namespace pagelab::lab

#pragma once
// x86 disassembly (Capstone) of guest code, in the bitness the vCPU is executing.
#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace pagelab::lab {

enum class CodeBits : unsigned { Bits16 = 16, Bits32 = 32, Bits64 = 64 };

struct DisassembledInstruction {
  std::uint64_t address = 0;
  std::vector<std::uint8_t> bytes;
  std::string mnemonic;  // "ud2", "mov"
  std::string operands;  // "ax, 0x1234" (may be empty)
  // "mov ax, 0x1234" (mnemonic alone when there are no operands).
  [[nodiscard]] std::string text() const;
  // "66 b8 34 12".
  [[nodiscard]] std::string hex_bytes() const;
};

// Up to `max` instructions starting at `bytes[0]`, which sits at `address`. Stops
// early at the end of the bytes or at an undecodable byte (so an empty result means
// the first instruction is invalid or incomplete). Throws std::runtime_error when
// Capstone itself fails to open.
std::vector<DisassembledInstruction> disassemble(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t address, CodeBits bits,
                                                 std::size_t max = 1);

// The bitness the CPU decodes in: 16 in real mode (CR0.PE=0); in protected mode 64
// when EFER.LMA and CS.L, else 32 if CS.D/B, else 16.
CodeBits code_bits_of(const kvm_sregs& sregs);

}  // namespace pagelab::lab

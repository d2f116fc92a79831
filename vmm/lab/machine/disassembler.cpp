#include "pagelab/lab/machine/disassembler.hpp"

#include <capstone/capstone.h>

#include <fmt/format.h>
#include <stdexcept>

#include "pagelab/paging/bits.hpp"

namespace pagelab::lab {
namespace {

cs_mode capstone_mode(CodeBits bits) {
  switch (bits) {
    case CodeBits::Bits16:
      return CS_MODE_16;
    case CodeBits::Bits32:
      return CS_MODE_32;
    case CodeBits::Bits64:
      return CS_MODE_64;
  }
  throw std::invalid_argument("disassemble: code bits must be 16, 32 or 64");
}

// Owns a Capstone handle.
class Capstone {
 public:
  explicit Capstone(CodeBits bits) {
    if (const cs_err err = cs_open(CS_ARCH_X86, capstone_mode(bits), &handle_); err != CS_ERR_OK) {
      throw std::runtime_error(fmt::format("cs_open: {}", cs_strerror(err)));
    }
  }
  Capstone(const Capstone&) = delete;
  Capstone& operator=(const Capstone&) = delete;
  ~Capstone() { cs_close(&handle_); }
  [[nodiscard]] csh get() const { return handle_; }

 private:
  csh handle_ = 0;
};

// Owns instructions returned by cs_disasm.
class Instructions {
 public:
  Instructions(cs_insn* insn, std::size_t count) : insn_(insn), count_(count) {}
  Instructions(const Instructions&) = delete;
  Instructions& operator=(const Instructions&) = delete;
  ~Instructions() {
    if (insn_ != nullptr) {
      cs_free(insn_, count_);
    }
  }
  [[nodiscard]] std::span<const cs_insn> view() const { return {insn_, count_}; }

 private:
  cs_insn* insn_;
  std::size_t count_;
};

}  // namespace

std::string DisassembledInstruction::text() const {
  return operands.empty() ? mnemonic : mnemonic + " " + operands;
}

std::string DisassembledInstruction::hex_bytes() const {
  return fmt::format("{:02x}", fmt::join(bytes, " "));
}

std::vector<DisassembledInstruction> disassemble(std::span<const std::uint8_t> bytes,
                                                 std::uint64_t address, CodeBits bits,
                                                 std::size_t max) {
  std::vector<DisassembledInstruction> result;
  if (bytes.empty() || max == 0) {
    return result;
  }
  const Capstone capstone(bits);
  cs_insn* insn = nullptr;
  const std::size_t count =
      cs_disasm(capstone.get(), bytes.data(), bytes.size(), address, max, &insn);
  const Instructions owned(insn, count);
  for (const cs_insn& one : owned.view()) {
    result.push_back(DisassembledInstruction{
        one.address,
        std::vector<std::uint8_t>(one.bytes, one.bytes + one.size),
        one.mnemonic,
        one.op_str,
    });
  }
  return result;
}

CodeBits code_bits_of(const kvm_sregs& sregs) {
  if ((sregs.cr0 & paging::Cr0::Pe) == 0) {
    return CodeBits::Bits16;
  }
  if ((sregs.efer & paging::Efer::Lma) != 0 && sregs.cs.l != 0) {
    return CodeBits::Bits64;
  }
  return sregs.cs.db != 0 ? CodeBits::Bits32 : CodeBits::Bits16;
}

}  // namespace pagelab::lab

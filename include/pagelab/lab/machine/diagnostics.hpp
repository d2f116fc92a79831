#pragma once
// When the guest stops abnormally (triple fault, KVM internal error, failed entry,
// hang), say what the vCPU was doing: registers, mode, and the instruction at
// CS:RIP disassembled in the right bitness.
#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "pagelab/kvm/exit.hpp"
#include "pagelab/lab/machine/disassembler.hpp"
#include "pagelab/lab/machine/probe_report.hpp"

namespace pagelab::lab {

// Reads `len` bytes of guest code at a linear address; nullopt if unmapped. The
// caller translates through the guest's page tables when paging is on. It may
// return fewer bytes than asked (e.g. up to the end of a page).
using CodeReader =
    std::function<std::optional<std::vector<std::uint8_t>>(std::uint64_t linear, std::size_t len)>;

// What the host last knew before the guest stopped: the probe's report after the last
// command that finished, and the command it was running when it stopped.
struct LastKnownState {
  ProbeReport report;
  std::uint32_t command = 0;  // PROBE_CMD_*
  std::uint64_t arg0 = 0;
};

struct AbnormalStop {
  // "triple fault (SHUTDOWN)", "KVM internal error (emulation failure)", "entry
  // failed", "hang", or "unexpected exit" for an ordinary exit passed in here.
  std::string kind;
  std::string exit_description;  // kvm::describe(exit)
  kvm_regs regs{};
  kvm_sregs sregs{};
  // "real", "16-bit protected", "32-bit protected", "compatibility", "64-bit".
  std::string cs_mode;
  CodeBits bits = CodeBits::Bits16;
  std::uint64_t code_linear = 0;  // CS.base + RIP (CS.base ignored in 64-bit mode)
  std::optional<DisassembledInstruction> instruction;
  // "kvm" (bytes from KVM_EXIT_INTERNAL_ERROR), "guest memory", or "" (unavailable).
  std::string bytes_source;
  std::vector<std::uint8_t> code_bytes;  // what was disassembled (may be undecodable)
  // A triple fault whose registers are the vCPU's INIT state (CS:RIP F000:FFF0): the
  // platform re-initialised the vCPU before reporting the shutdown (kvm_amd does, on
  // real AMD hosts too), so the state at the fault is lost. The registers are then
  // not presented as the fault's, and nothing is disassembled.
  bool state_lost = false;
  std::string state_lost_reason;
  std::optional<LastKnownState> last_known;  // set by the Lab when state_lost
  // A hang whose RIP follows a HLT byte (0xF4): the CPU is halted there, and the code
  // at RIP is the next instruction, not yet run.
  bool after_hlt = false;
};

// True for the registers of a vCPU just after INIT or RESET (SDM vol. 3 Table 10-1,
// AMD APM vol. 2 §14.1.3): CS selector F000, base FFFF0000, RIP FFF0.
bool is_init_state(const kvm_regs& regs, const kvm_sregs& sregs);

// The kind string for an exit, or nullopt for an ordinary exit (I/O, MMIO, HLT).
std::optional<std::string> abnormal_stop_kind(const kvm::Exit& exit);
// "real" / "16-bit protected" / "32-bit protected" / "compatibility" / "64-bit".
std::string cs_mode_name(const kvm_sregs& sregs);

AbnormalStop analyse_abnormal_stop(const kvm::Exit& exit, const kvm_regs& regs,
                                   const kvm_sregs& sregs, const CodeReader& read_code);

// Multi-line human report; says "instruction bytes unavailable" when neither KVM
// nor read_code provided the code.
std::string describe_abnormal_stop(const kvm::Exit& exit, const kvm_regs& regs,
                                   const kvm_sregs& sregs, const CodeReader& read_code);
std::string describe(const AbnormalStop& stop);

// The same facts as JSON. Register values and addresses are "0x..." strings (64-bit
// values do not survive JSON readers that use doubles).
nlohmann::json abnormal_stop_json(const kvm::Exit& exit, const kvm_regs& regs,
                                  const kvm_sregs& sregs, const CodeReader& read_code);
nlohmann::json to_json(const AbnormalStop& stop);

}  // namespace pagelab::lab

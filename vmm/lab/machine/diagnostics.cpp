#include "pagelab/lab/machine/diagnostics.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "pagelab/paging/bits.hpp"

namespace pagelab::lab {
namespace {

// The longest x86 instruction (SDM vol. 2 §2.1).
constexpr std::size_t kMaxInstructionLength = 15;
constexpr std::uint8_t kHltOpcode = 0xf4;  // HLT (SDM vol. 2)
constexpr std::uint64_t kPageSize = 4096;
constexpr std::uint64_t kLow32 = paging::bits(0, 31);
constexpr std::uint64_t kLow16 = paging::bits(0, 15);
// The vCPU's state after INIT or RESET (SDM vol. 3 Table 10-1).
constexpr std::uint16_t kInitCsSelector = 0xf000;
constexpr std::uint64_t kInitCsBase = 0xffff0000;
constexpr std::uint64_t kInitRip = 0xfff0;

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

std::string hex(std::uint64_t value) {
  return fmt::format("{:#x}", value);
}

// The instruction pointer as the CPU uses it: IP in 16-bit code, EIP in 32-bit.
std::uint64_t effective_ip(std::uint64_t rip, CodeBits bits) {
  switch (bits) {
    case CodeBits::Bits16:
      return rip & kLow16;
    case CodeBits::Bits32:
      return rip & kLow32;
    case CodeBits::Bits64:
      break;
  }
  return rip;
}

std::uint64_t code_linear_address(const kvm_regs& regs, const kvm_sregs& sregs, CodeBits bits) {
  const std::uint64_t ip = effective_ip(regs.rip, bits);
  if (bits == CodeBits::Bits64) {
    return ip;  // CS.base is treated as 0 in 64-bit mode.
  }
  // Outside 64-bit mode linear addresses are 32 bits wide and wrap.
  return (sregs.cs.base + ip) & kLow32;
}

// Asks for a whole instruction's worth; if that crosses into something unreadable,
// retries with only the rest of the page.
std::optional<std::vector<std::uint8_t>> fetch_code(const CodeReader& read_code,
                                                    std::uint64_t linear) {
  if (!read_code) {
    return std::nullopt;
  }
  auto bytes = read_code(linear, kMaxInstructionLength);
  if (bytes && !bytes->empty()) {
    return bytes;
  }
  const std::uint64_t to_page_end = kPageSize - (linear % kPageSize);
  if (to_page_end < kMaxInstructionLength) {
    bytes = read_code(linear, to_page_end);
    if (bytes && !bytes->empty()) {
      return bytes;
    }
  }
  return std::nullopt;
}

nlohmann::json exit_detail_json(const kvm::Exit& exit) {
  return std::visit(
      Overloaded{
          [](const kvm::InternalErrorExit& internal) {
            nlohmann::json data = nlohmann::json::array();
            for (const auto word : internal.data) {
              data.push_back(hex(word));
            }
            return nlohmann::json{{"suberror", internal.suberror},
                                  {"suberror_name", kvm::internal_error_name(internal.suberror)},
                                  {"data", data}};
          },
          [](const kvm::FailEntryExit& fail) {
            return nlohmann::json{{"hardware_reason", hex(fail.hardware_reason)},
                                  {"cpu", fail.cpu}};
          },
          [](const kvm::HangExit& hang) {
            return nlohmann::json{{"after_ms", hang.after.count()}};
          },
          [](const kvm::OtherExit& other) {
            return nlohmann::json{{"reason", other.reason},
                                  {"reason_name", kvm::exit_reason_name(other.reason)}};
          },
          [](const auto&) { return nlohmann::json::object(); },
      },
      exit);
}

}  // namespace

std::optional<std::string> abnormal_stop_kind(const kvm::Exit& exit) {
  return std::visit(
      Overloaded{
          [](const kvm::ShutdownExit&) -> std::optional<std::string> {
            return "triple fault (SHUTDOWN)";
          },
          [](const kvm::InternalErrorExit& internal) -> std::optional<std::string> {
            return fmt::format("KVM internal error ({})",
                               kvm::internal_error_name(internal.suberror));
          },
          [](const kvm::FailEntryExit&) -> std::optional<std::string> { return "entry failed"; },
          [](const kvm::HangExit&) -> std::optional<std::string> { return "hang"; },
          [](const kvm::OtherExit&) -> std::optional<std::string> { return "unexpected exit"; },
          [](const auto&) -> std::optional<std::string> { return std::nullopt; },
      },
      exit);
}

std::string cs_mode_name(const kvm_sregs& sregs) {
  if ((sregs.cr0 & paging::Cr0::Pe) == 0) {
    return "real";
  }
  if ((sregs.efer & paging::Efer::Lma) != 0) {
    return sregs.cs.l != 0 ? "64-bit" : "compatibility";
  }
  return sregs.cs.db != 0 ? "32-bit protected" : "16-bit protected";
}

bool is_init_state(const kvm_regs& regs, const kvm_sregs& sregs) {
  return sregs.cs.selector == kInitCsSelector && sregs.cs.base == kInitCsBase &&
         regs.rip == kInitRip && (sregs.cr0 & paging::Cr0::Pe) == 0;
}

AbnormalStop analyse_abnormal_stop(const kvm::Exit& exit, const kvm_regs& regs,
                                   const kvm_sregs& sregs, const CodeReader& read_code) {
  AbnormalStop stop;
  stop.kind = abnormal_stop_kind(exit).value_or("unexpected exit");
  stop.exit_description = kvm::describe(exit);
  stop.regs = regs;
  stop.sregs = sregs;
  stop.cs_mode = cs_mode_name(sregs);
  stop.bits = code_bits_of(sregs);
  stop.code_linear = code_linear_address(regs, sregs, stop.bits);
  // The probe never runs at the reset vector: a shutdown that lands there was followed
  // by an INIT before userspace saw it. Disassembling F000:FFF0 would present the
  // platform's reset as the guest's fault.
  if (std::holds_alternative<kvm::ShutdownExit>(exit) && is_init_state(regs, sregs)) {
    stop.state_lost = true;
    stop.state_lost_reason =
        "the registers after the shutdown are the vCPU's INIT state (CS:RIP F000:FFF0), not the "
        "fault's: the platform re-initialised the vCPU before reporting it (kvm_amd does so on "
        "every shutdown intercept, as the VMCB is undefined after one)";
    stop.cs_mode = "unknown";
    return stop;
  }

  // KVM's own copy is what it failed on; guest memory may have changed since.
  if (const auto* internal = std::get_if<kvm::InternalErrorExit>(&exit);
      internal != nullptr && !internal->instruction_bytes.empty()) {
    stop.code_bytes = internal->instruction_bytes;
    stop.bytes_source = "kvm";
  } else if (auto bytes = fetch_code(read_code, stop.code_linear)) {
    stop.code_bytes = std::move(*bytes);
    stop.bytes_source = "guest memory";
  }
  // HLT leaves RIP after itself: a halted CPU's "instruction at RIP" is the next one.
  if (stop.kind == "hang" && read_code && stop.code_linear > 0) {
    const auto before = read_code(stop.code_linear - 1, 1);
    stop.after_hlt = before && before->size() == 1 && before->front() == kHltOpcode;
  }
  if (!stop.code_bytes.empty()) {
    auto decoded = disassemble(stop.code_bytes, effective_ip(regs.rip, stop.bits), stop.bits, 1);
    if (!decoded.empty()) {
      stop.instruction = std::move(decoded.front());
    }
  }
  return stop;
}

namespace {

std::string describe_register_dump(const kvm_regs& r, const kvm_sregs& s) {
  std::string text;
  text +=
      fmt::format("RAX={:016x} RBX={:016x} RCX={:016x} RDX={:016x}\n", r.rax, r.rbx, r.rcx, r.rdx);
  text +=
      fmt::format("RSI={:016x} RDI={:016x} RBP={:016x} RSP={:016x}\n", r.rsi, r.rdi, r.rbp, r.rsp);
  text +=
      fmt::format("R8 ={:016x} R9 ={:016x} R10={:016x} R11={:016x}\n", r.r8, r.r9, r.r10, r.r11);
  text +=
      fmt::format("R12={:016x} R13={:016x} R14={:016x} R15={:016x}\n", r.r12, r.r13, r.r14, r.r15);
  text += fmt::format("RIP={:016x} RFLAGS={:016x}\n", r.rip, r.rflags);
  text += fmt::format("CR0={:016x} CR2={:016x} CR3={:016x} CR4={:016x} EFER={:016x}\n", s.cr0,
                      s.cr2, s.cr3, s.cr4, s.efer);
  return text;
}

std::string describe_lost_state(const AbnormalStop& stop) {
  std::string text;
  text += fmt::format("abnormal stop: {}\n", stop.kind);
  text += fmt::format("exit: {}\n", stop.exit_description);
  text += fmt::format("the state at the fault is lost: {}\n", stop.state_lost_reason);
  if (stop.last_known) {
    const auto& r = stop.last_known->report;
    text += fmt::format("last state the probe reported: {}, {}-bit code, {}\n", r.mode_name(),
                        r.code_bits, r.registers_text());
    text += fmt::format("then it ran probe command {:#x} (arg {:#x}), which faulted\n",
                        stop.last_known->command, stop.last_known->arg0);
  }
  text += "faulting instruction: unknown (state lost)\n";
  text += "registers after the platform's INIT (not the fault's):\n";
  return text + describe_register_dump(stop.regs, stop.sregs);
}

}  // namespace

std::string describe(const AbnormalStop& stop) {
  if (stop.state_lost) return describe_lost_state(stop);
  const kvm_regs& r = stop.regs;
  const kvm_sregs& s = stop.sregs;
  std::string text;
  text += fmt::format("abnormal stop: {}\n", stop.kind);
  text += fmt::format("exit: {}\n", stop.exit_description);
  text +=
      fmt::format("mode: {} (CS={:#06x} base={:#x} limit={:#x} D/B={} L={} DPL={})\n", stop.cs_mode,
                  s.cs.selector, s.cs.base, s.cs.limit, s.cs.db, s.cs.l, s.cs.dpl);
  text += describe_register_dump(r, s);
  text += fmt::format("code at CS:RIP {:04x}:{:x} (linear {:#x}), {}-bit: ", s.cs.selector,
                      effective_ip(r.rip, stop.bits), stop.code_linear,
                      static_cast<unsigned>(stop.bits));
  if (stop.instruction) {
    text += fmt::format("{}   [{}] (bytes from {})", stop.instruction->text(),
                        stop.instruction->hex_bytes(), stop.bytes_source);
  } else if (!stop.code_bytes.empty()) {
    text += fmt::format("undecodable bytes {:02x} (from {})", fmt::join(stop.code_bytes, " "),
                        stop.bytes_source);
  } else {
    text += "instruction bytes unavailable";
  }
  if (stop.after_hlt) {
    text += fmt::format(
        "\nthe CPU is halted: the byte before RIP is F4 (HLT), which leaves RIP after itself; "
        "the instruction shown is the next one, not yet run (HLT at linear {:#x})",
        stop.code_linear - 1);
  }
  return text + "\n";
}

std::string describe_abnormal_stop(const kvm::Exit& exit, const kvm_regs& regs,
                                   const kvm_sregs& sregs, const CodeReader& read_code) {
  return describe(analyse_abnormal_stop(exit, regs, sregs, read_code));
}

nlohmann::json to_json(const AbnormalStop& stop) {
  const kvm_regs& r = stop.regs;
  const kvm_sregs& s = stop.sregs;
  nlohmann::json registers = {
      {"rax", hex(r.rax)}, {"rbx", hex(r.rbx)},       {"rcx", hex(r.rcx)}, {"rdx", hex(r.rdx)},
      {"rsi", hex(r.rsi)}, {"rdi", hex(r.rdi)},       {"rbp", hex(r.rbp)}, {"rsp", hex(r.rsp)},
      {"r8", hex(r.r8)},   {"r9", hex(r.r9)},         {"r10", hex(r.r10)}, {"r11", hex(r.r11)},
      {"r12", hex(r.r12)}, {"r13", hex(r.r13)},       {"r14", hex(r.r14)}, {"r15", hex(r.r15)},
      {"rip", hex(r.rip)}, {"rflags", hex(r.rflags)},
  };
  nlohmann::json control = {{"cr0", hex(s.cr0)},
                            {"cr2", hex(s.cr2)},
                            {"cr3", hex(s.cr3)},
                            {"cr4", hex(s.cr4)},
                            {"efer", hex(s.efer)}};
  nlohmann::json cs = {{"selector", hex(s.cs.selector)},
                       {"base", hex(s.cs.base)},
                       {"limit", hex(s.cs.limit)},
                       {"db", s.cs.db},
                       {"l", s.cs.l},
                       {"dpl", s.cs.dpl}};
  nlohmann::json code = {
      {"linear", hex(stop.code_linear)},
      {"bits", static_cast<unsigned>(stop.bits)},
      {"bytes_source",
       stop.bytes_source.empty() ? nlohmann::json(nullptr) : nlohmann::json(stop.bytes_source)},
      {"bytes", fmt::format("{:02x}", fmt::join(stop.code_bytes, " "))},
      {"instruction", nullptr},
  };
  if (stop.after_hlt) code["after_hlt"] = true;
  if (stop.instruction) {
    code["instruction"] = {{"address", hex(stop.instruction->address)},
                           {"bytes", stop.instruction->hex_bytes()},
                           {"mnemonic", stop.instruction->mnemonic},
                           {"operands", stop.instruction->operands},
                           {"text", stop.instruction->text()}};
  }
  nlohmann::json json = {{"kind", stop.kind},      {"exit", stop.exit_description},
                         {"mode", stop.cs_mode},   {"cs", cs},
                         {"registers", registers}, {"control", control},
                         {"code", code},           {"state_lost", stop.state_lost}};
  if (stop.state_lost) {
    // The registers and code above are the INIT state's: say so beside them.
    json["state_lost_reason"] = stop.state_lost_reason;
    json["code"] = nullptr;
    json["last_known"] = nullptr;
    if (stop.last_known) {
      auto last = stop.last_known->report.to_json();
      last["command"] = hex(stop.last_known->command);
      last["arg0"] = hex(stop.last_known->arg0);
      json["last_known"] = std::move(last);
    }
  }
  return json;
}

nlohmann::json abnormal_stop_json(const kvm::Exit& exit, const kvm_regs& regs,
                                  const kvm_sregs& sregs, const CodeReader& read_code) {
  nlohmann::json json = to_json(analyse_abnormal_stop(exit, regs, sregs, read_code));
  json["exit_detail"] = exit_detail_json(exit);
  return json;
}

}  // namespace pagelab::lab

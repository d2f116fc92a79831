#include "pagelab/kvm/exit.hpp"

#include <linux/kvm.h>

#include <fmt/format.h>
#include <array>
#include <cstddef>

namespace pagelab::kvm {
namespace {

constexpr std::size_t kMaxValuesShown = 16;

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

// Element values as the guest sees them (little-endian, `size` bytes each).
std::string format_values(const std::vector<std::uint8_t>& data, std::size_t size) {
  if (size == 0) {
    return {};
  }
  std::string text;
  const std::size_t count = data.size() / size;
  for (std::size_t i = 0; i < count && i < kMaxValuesShown; ++i) {
    std::uint64_t value = 0;
    for (std::size_t b = 0; b < size; ++b) {
      value |= std::uint64_t{data[i * size + b]} << (8 * b);
    }
    text += fmt::format("{}{:#0{}x}", i == 0 ? "" : " ", value, 2 + 2 * size);
  }
  if (count > kMaxValuesShown) {
    text += " ...";
  }
  return text;
}

std::string format_bytes(const std::uint8_t* data, std::size_t length) {
  std::string text;
  for (std::size_t i = 0; i < length; ++i) {
    text += fmt::format("{}{:02x}", i == 0 ? "" : " ", data[i]);
  }
  return text;
}

}  // namespace

std::string exit_reason_name(std::uint32_t reason) {
  static constexpr std::array<const char*, 38> kNames = {
      "KVM_EXIT_UNKNOWN",
      "KVM_EXIT_EXCEPTION",
      "KVM_EXIT_IO",
      "KVM_EXIT_HYPERCALL",
      "KVM_EXIT_DEBUG",
      "KVM_EXIT_HLT",
      "KVM_EXIT_MMIO",
      "KVM_EXIT_IRQ_WINDOW_OPEN",
      "KVM_EXIT_SHUTDOWN",
      "KVM_EXIT_FAIL_ENTRY",
      "KVM_EXIT_INTR",
      "KVM_EXIT_SET_TPR",
      "KVM_EXIT_TPR_ACCESS",
      "KVM_EXIT_S390_SIEIC",
      "KVM_EXIT_S390_RESET",
      "KVM_EXIT_DCR",
      "KVM_EXIT_NMI",
      "KVM_EXIT_INTERNAL_ERROR",
      "KVM_EXIT_OSI",
      "KVM_EXIT_PAPR_HCALL",
      "KVM_EXIT_S390_UCONTROL",
      "KVM_EXIT_WATCHDOG",
      "KVM_EXIT_S390_TSCH",
      "KVM_EXIT_EPR",
      "KVM_EXIT_SYSTEM_EVENT",
      "KVM_EXIT_S390_STSI",
      "KVM_EXIT_IOAPIC_EOI",
      "KVM_EXIT_HYPERV",
      "KVM_EXIT_ARM_NISV",
      "KVM_EXIT_X86_RDMSR",
      "KVM_EXIT_X86_WRMSR",
      "KVM_EXIT_DIRTY_RING_FULL",
      "KVM_EXIT_AP_RESET_HOLD",
      "KVM_EXIT_X86_BUS_LOCK",
      "KVM_EXIT_XEN",
      "KVM_EXIT_RISCV_SBI",
      "KVM_EXIT_RISCV_CSR",
      "KVM_EXIT_NOTIFY",
  };
  static_assert(KVM_EXIT_NOTIFY == kNames.size() - 1);
  if (reason < kNames.size()) {
    return kNames[reason];
  }
  return fmt::format("KVM_EXIT_{}", reason);
}

std::string internal_error_name(std::uint32_t suberror) {
  switch (suberror) {
    case KVM_INTERNAL_ERROR_EMULATION:
      return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX:
      return "simultaneous exceptions";
    case KVM_INTERNAL_ERROR_DELIVERY_EV:
      return "event delivery";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
      return "unexpected exit reason";
    default:
      return "unknown";
  }
}

std::string describe(const Exit& exit) {
  return std::visit(
      Overloaded{
          [](const IoExit& io) {
            std::string text =
                fmt::format("I/O {} port {:#x} size {}", io.out ? "out" : "in", io.port, io.size);
            if (io.count != 1) {
              text += fmt::format(" count {}", io.count);
            }
            if (io.out) {
              text += ": " + format_values(io.data, io.size);
            }
            return text;
          },
          [](const MmioExit& mmio) {
            std::string text = fmt::format("MMIO {} {:#x} length {}", mmio.write ? "write" : "read",
                                           mmio.address, mmio.length);
            if (mmio.write) {
              const std::size_t shown = mmio.length < mmio.data.size() ? mmio.length : 8;
              text += ": " + format_bytes(mmio.data.data(), shown);
            }
            return text;
          },
          [](const HltExit&) { return std::string("KVM_EXIT_HLT (guest executed HLT)"); },
          [](const ShutdownExit&) { return std::string("KVM_EXIT_SHUTDOWN (triple fault)"); },
          [](const InternalErrorExit& internal) {
            std::string text =
                fmt::format("KVM_EXIT_INTERNAL_ERROR suberror {} ({})", internal.suberror,
                            internal_error_name(internal.suberror));
            if (!internal.instruction_bytes.empty()) {
              text += "; instruction bytes " + format_bytes(internal.instruction_bytes.data(),
                                                            internal.instruction_bytes.size());
            }
            return text;
          },
          [](const FailEntryExit& fail) {
            return fmt::format("KVM_EXIT_FAIL_ENTRY hardware reason {:#x} on cpu {}",
                               fail.hardware_reason, fail.cpu);
          },
          [](const HangExit& hang) {
            return fmt::format("hang: no exit within {} ms", hang.after.count());
          },
          [](const OtherExit& other) {
            return fmt::format("{} ({})", exit_reason_name(other.reason), other.reason);
          },
      },
      exit);
}

}  // namespace pagelab::kvm

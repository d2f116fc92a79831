#pragma once
// What the probe says after each command: status, any exception it caught, and the
// control registers as read inside the guest.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace pagelab::lab {

enum class ProbeStatus : std::uint32_t { Ok = 0, Fault = 1, BadCommand = 2 };

struct ProbeReport {
  ProbeStatus status = ProbeStatus::Ok;
  unsigned code_bits = 0;  // the dispatcher that answered: 16, 32 or 64
  std::uint32_t vector = 0;
  std::uint64_t error_code = 0;
  std::uint64_t fault_rip = 0;
  std::uint64_t cr0 = 0, cr2 = 0, cr3 = 0, cr4 = 0, efer = 0;
  std::uint16_t cs = 0, ss = 0, ds = 0;
  std::uint64_t value = 0, value2 = 0;

  [[nodiscard]] bool ok() const { return status == ProbeStatus::Ok; }
  [[nodiscard]] bool faulted() const { return status == ProbeStatus::Fault; }
  // "#GP(0) at 0x84fd", "ok", "command not valid in this mode".
  [[nodiscard]] std::string outcome_text() const;
  // "real mode", "protected mode", "32-bit paging", "PAE paging", "IA-32e compatibility
  // mode (4-level)", "64-bit mode, 4-level paging", ... from the registers it reported.
  [[nodiscard]] std::string mode_name() const;
  [[nodiscard]] std::string registers_text() const;  // "CR0=... CR3=... CR4=... EFER=..."
  [[nodiscard]] nlohmann::json to_json() const;
};

// Mnemonic of an exception vector: "#DE", "#GP", "#PF", ... ("vector 22" otherwise).
std::string vector_name(std::uint32_t vector);

}  // namespace pagelab::lab

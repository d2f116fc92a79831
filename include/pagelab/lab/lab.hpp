#pragma once
// A Lab is one VM with one vCPU running the probe: guest RAM, the probe image, the
// mailbox protocol (probe_abi.h) and the diagnostics when the guest stops abnormally.
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "pagelab/kvm/guest_memory.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/kvm/vcpu.hpp"
#include "pagelab/kvm/vm.hpp"
#include "pagelab/lab/cpu_features.hpp"
#include "pagelab/lab/guest_physical_memory.hpp"
#include "pagelab/lab/mode_tables.hpp"
#include "pagelab/lab/probe_report.hpp"
#include "pagelab/paging/address.hpp"

namespace pagelab::lab {

struct LabOptions {
  std::size_t memory_bytes = 16 << 20;
  // A command that has not finished by then is reported as a hang.
  std::chrono::milliseconds watchdog{5000};
};

// The guest stopped in a way the probe did not choose: triple fault, an instruction
// KVM could not run, a failed entry, a hang, or an unexpected exit. Carries the
// diagnostics (registers, mode, disassembled instruction).
class GuestStopped : public std::runtime_error {
 public:
  GuestStopped(std::string kind, std::string report, nlohmann::json json)
      : std::runtime_error(kind),
        kind_(std::move(kind)),
        report_(std::move(report)),
        json_(std::move(json)) {}
  [[nodiscard]] const std::string& kind() const { return kind_; }
  [[nodiscard]] const std::string& report() const { return report_; }
  [[nodiscard]] const nlohmann::json& json() const { return json_; }

 private:
  std::string kind_, report_;
  nlohmann::json json_;
};

class Lab {
 public:
  // Creates the VM, loads the probe, gives the vCPU the platform's CPUID and runs the
  // probe to its first report (real mode).
  explicit Lab(const LabOptions& options = {});

  // Runs one probe command to completion (one VM exit). Throws GuestStopped.
  ProbeReport command(std::uint32_t cmd, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0,
                      std::uint64_t arg2 = 0, std::uint64_t arg3 = 0);
  [[nodiscard]] const ProbeReport& last_report() const { return last_; }

  [[nodiscard]] kvm::GuestMemory& ram() { return ram_; }
  [[nodiscard]] GuestPhysicalMemory& physical() { return physical_; }
  [[nodiscard]] kvm::Vcpu& vcpu() { return vcpu_; }
  [[nodiscard]] const PlatformCpu& cpu() const { return cpu_; }
  [[nodiscard]] std::uint64_t exits() const { return exits_; }
  // Identity maps of guest RAM for every paging mode (CR3 values).
  [[nodiscard]] const ModeTables& mode_tables() const { return tables_; }

  // Convenience routes used by several commands. Each throws std::runtime_error
  // naming the step when the probe faults or lands in another mode.
  void enter_protected();                    // from real mode
  void enter_long(paging::PagingMode mode);  // from protected mode, paging off: 64-bit

  // Copies code into guest RAM for PROBE_CMD_EXEC (identity-mapped, below 1 MiB).
  paging::GuestPhys place_code(std::span<const std::uint8_t> code);

 private:
  ProbeReport run_until_report();
  ProbeReport read_report() const;
  [[noreturn]] void abnormal(const kvm::Exit& exit);

  LabOptions options_;
  kvm::System system_;
  kvm::Vm vm_;
  kvm::GuestMemory ram_;
  GuestPhysicalMemory physical_;
  kvm::Vcpu vcpu_;
  PlatformCpu cpu_;
  ModeTables tables_;
  ProbeReport last_;
  std::uint32_t seq_ = 0;
  std::uint64_t exits_ = 0;
};

}  // namespace pagelab::lab

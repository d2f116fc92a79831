#pragma once
// A Lab is one machine (a Backend: KVM or QEMU TCG) with one vCPU running the probe:
// guest RAM, the probe image, the mailbox protocol (probe_abi.h) and the diagnostics
// when the guest stops abnormally.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "pagelab/kvm/vcpu.hpp"
#include "pagelab/lab/backend/backend.hpp"
#include "pagelab/lab/machine/cpu_features.hpp"
#include "pagelab/lab/machine/guest_physical_memory.hpp"
#include "pagelab/lab/machine/mode_tables.hpp"
#include "pagelab/lab/machine/probe_report.hpp"
#include "pagelab/paging/address.hpp"

namespace pagelab::lab {

struct LabOptions {
  std::size_t memory_bytes = 16 << 20;
  // A command that has not finished by then is reported as a hang.
  std::chrono::milliseconds watchdog{5000};
  // Also a hang once the backend's vCPU has spent this much CPU time on one command,
  // where the backend can tell (Watchdog::busy).
  std::optional<std::chrono::milliseconds> busy_watchdog;
  // Which machine runs the probe (make_backend). KVM by default.
  BackendKind backend = BackendKind::Kvm;
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
  // Creates the machine (options.backend), loads the probe and runs it to its first
  // report (real mode); learns the CPUID the guest sees (from KVM, or from the probe
  // itself) and builds the identity maps for every mode.
  explicit Lab(const LabOptions& options = {});
  Lab(std::unique_ptr<Backend> backend, const LabOptions& options = {});

  // Back to the probe's first report in real mode, on the same machine: the backend
  // reset to its power-on state (Backend::reset), RAM cleared, the probe and the mode
  // tables written again. What a new Lab gives, without a new VM or QEMU process.
  // Throws GuestStopped when the probe does not boot.
  void reset();

  // Runs one probe command to completion (one doorbell). Throws GuestStopped.
  ProbeReport command(std::uint32_t cmd, std::uint64_t arg0 = 0, std::uint64_t arg1 = 0,
                      std::uint64_t arg2 = 0, std::uint64_t arg3 = 0);
  // A batch (PROBE_CMD_BATCH) whose records include sync points (BOP_SYNC): `on_sync`
  // is called with the GPA of each sync record when the probe reaches it, and the
  // batch goes on when it returns. Throws GuestStopped, and std::runtime_error when the
  // probe names a sync point outside the batch.
  using SyncHandler = std::function<void(paging::GuestPhys record)>;
  ProbeReport batch(paging::GuestPhys first, std::uint64_t count, const SyncHandler& on_sync);
  [[nodiscard]] const ProbeReport& last_report() const { return last_; }
  // The hang watchdogs for the commands from now on (LabOptions' at first).
  void set_watchdog(std::chrono::milliseconds watchdog) { options_.watchdog = watchdog; }
  [[nodiscard]] std::chrono::milliseconds watchdog() const { return options_.watchdog; }
  void set_busy_watchdog(std::optional<std::chrono::milliseconds> busy) {
    options_.busy_watchdog = busy;
  }
  [[nodiscard]] std::optional<std::chrono::milliseconds> busy_watchdog() const {
    return options_.busy_watchdog;
  }

  [[nodiscard]] GuestRam& ram() { return backend_->ram(); }
  [[nodiscard]] GuestPhysicalMemory& physical() { return physical_; }
  // The KVM vCPU; throws std::logic_error naming the backend when it is not KVM.
  [[nodiscard]] kvm::Vcpu& vcpu();
  [[nodiscard]] Backend& backend() { return *backend_; }
  [[nodiscard]] std::string_view backend_name() const { return backend_->name(); }
  [[nodiscard]] const PlatformCpu& cpu() const { return cpu_; }
  // Host round trips (VM exits on KVM, doorbells on QEMU).
  [[nodiscard]] std::uint64_t exits() const { return backend_->round_trips(); }
  // Time spent waiting for the probe to report (the guest running, its exits and the
  // host's part of its sync points): with a clock around a run of the engine, where
  // that run's time went, the guest's side or the host's judging.
  [[nodiscard]] std::chrono::steady_clock::duration guest_time() const { return guest_time_; }
  // Identity maps of guest RAM for every paging mode (CR3 values).
  [[nodiscard]] const ModeTables& mode_tables() const { return tables_; }

  // Convenience routes used by several commands. Each throws std::runtime_error
  // naming the step when the probe faults or lands in another mode.
  void enter_protected();                    // from real mode
  void enter_long(paging::PagingMode mode);  // from protected mode, paging off: 64-bit

  // Copies code into guest RAM for PROBE_CMD_EXEC (identity-mapped, below 1 MiB).
  paging::GuestPhys place_code(std::span<const std::uint8_t> code);

  // The paging-relevant CPUID leaves as the guest itself sees them, executed by the
  // probe. The SDM's reserved-bit rules follow what CPUID returns to software, and a
  // platform may not take that from the table the VMM set (PVM does not).
  std::vector<kvm_cpuid_entry2> cpuid_from_probe();

 private:
  void boot();
  void build_tables();
  // The command's registers, MB_SEQ last (what tells the probe it is there).
  void write_command(std::uint32_t cmd, std::uint64_t arg0, std::uint64_t arg1, std::uint64_t arg2,
                     std::uint64_t arg3);
  ProbeReport run_until_report(const DoorbellHandler& on_doorbell = {});
  ProbeReport read_report() const;
  [[noreturn]] void abnormal(const BackendStop& stop);

  LabOptions options_;
  std::unique_ptr<Backend> backend_;
  GuestPhysicalMemory physical_;
  PlatformCpu cpu_;
  ModeTables tables_;
  ProbeReport last_;
  std::uint32_t seq_ = 0;
  std::chrono::steady_clock::duration guest_time_{};
};

}  // namespace pagelab::lab

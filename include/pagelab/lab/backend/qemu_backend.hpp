#pragma once
// The QEMU TCG backend: qemu-system-x86_64 -accel tcg -cpu max as a child process,
// guest RAM in a memfd both processes map, a 64 KiB BIOS whose reset vector far-jumps
// to the probe, QMP on the child's stdin/stdout for control, and the probe's OUT to
// port 0xE9 delivered by isa-debugcon over a pipe as the doorbell (no VM exit).
// The QEMU process is always reaped: QMP quit, then SIGKILL; PR_SET_PDEATHSIG kills
// it if this process dies (it fires when the *thread* that forked exits, so create
// the backend on a long-lived thread).
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pagelab/lab/backend/backend.hpp"

namespace pagelab::lab {

// The binary looked for: $PAGELAB_QEMU if set, else qemu-system-x86_64 on $PATH.
std::string qemu_binary_name();
// Absolute path of that binary, or nullopt when it is not installed.
std::optional<std::string> find_qemu_binary();

struct QemuOptions {
  std::size_t memory_bytes = 16 << 20;
  // -name: shows up in the process list, so tests can find their QEMU. Empty: a
  // name unique to this process.
  std::string name;
};

class QemuBackend : public Backend {
 public:
  // Starts QEMU stopped (-S) and completes the QMP handshake; throws
  // std::runtime_error with QEMU's own message when it cannot start.
  explicit QemuBackend(const QemuOptions& options);
  ~QemuBackend() override;
  QemuBackend(const QemuBackend&) = delete;
  QemuBackend& operator=(const QemuBackend&) = delete;

  [[nodiscard]] std::string_view name() const override { return "qemu-tcg"; }
  [[nodiscard]] std::string_view round_trip_name() const override { return "doorbells"; }
  [[nodiscard]] GuestRam& ram() override;
  void start() override;
  void reset() override;
  [[nodiscard]] std::optional<BackendStop> run_until_done(
      std::uint32_t seq, const Watchdog& watchdog, const DoorbellHandler& on_doorbell) override;
  [[nodiscard]] MachineRegisters registers() override;
  [[nodiscard]] std::uint64_t round_trips() const override;
  [[nodiscard]] std::chrono::nanoseconds outside_cpu_time() const override;
  void share_cpu(std::optional<unsigned> cpu) override;

  [[nodiscard]] int pid() const;
  [[nodiscard]] const std::string& process_name() const;
  // NMIs sent to wake a halted probe (probe_abi.h, MB_WAITING).
  [[nodiscard]] std::uint64_t wake_ups() const;

 private:
  std::atomic_ref<std::uint32_t> waiting_word();
  void wake_if_halted();
  void send_nmi();
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace pagelab::lab

#pragma once
// What a Lab needs from a machine: guest RAM mapped into the host, a vCPU that starts
// the probe in real mode and runs until the probe finishes a command, its registers
// for diagnostics, and the CPUID it offers. KVM and QEMU TCG provide it.
#include <linux/kvm.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "pagelab/kvm/exit.hpp"
#include "pagelab/lab/backend/guest_ram.hpp"

namespace pagelab::lab {

// Registers as plain data; both backends fill KVM's structs.
struct MachineRegisters {
  kvm_regs regs{};
  kvm_sregs sregs{};
};

// When a command that has not finished counts as a hang. `wall` always applies. `busy`
// applies where the backend can measure the CPU time its vCPU spent on the command
// (QEMU): a short busy budget tells a spinning guest from a machine that is merely
// loaded, which a short wall-clock limit cannot.
struct Watchdog {
  std::chrono::milliseconds wall{5000};
  std::optional<std::chrono::milliseconds> busy;
};

// The guest stopped in a way the probe did not choose. `exit` classifies it (the
// diagnostics understand kvm::Exit); `description` says what the backend saw, in
// its own words, when that is not a KVM exit.
struct BackendStop {
  kvm::Exit exit;
  std::string description;
};

// Called for a doorbell that does not finish the command: true when the host handled
// it (the guest then runs on), false when it was not the host's to handle.
using DoorbellHandler = std::function<bool()>;

class Backend {
 public:
  virtual ~Backend() = default;
  // "kvm" or "qemu-tcg".
  [[nodiscard]] virtual std::string_view name() const = 0;
  // What one host round trip is called in reports: "VM exits", "doorbells".
  [[nodiscard]] virtual std::string_view round_trip_name() const = 0;
  [[nodiscard]] virtual GuestRam& ram() = 0;
  // Starts the vCPU in real mode at 0000:PROBE_LOAD_GPA; the probe must be in RAM.
  virtual void start() = 0;
  // Back to the power-on state, not running: every register, MSR and pending event as
  // a new machine has them, whatever the guest did (a triple fault, a hang). RAM is
  // kept as it is; start() runs the machine again.
  virtual void reset() = 0;
  // Lets the guest run until the probe rings the doorbell with MB_DONE_SEQ == seq:
  // nullopt then, else how it stopped (triple fault, hang per `watchdog`, ...). A
  // doorbell before that (a batch's sync point) is offered to `on_doorbell`, which
  // answers whether it was one; on QEMU, where the doorbell is only a wake-up, it is
  // asked whenever the backend looks at the mailbox.
  [[nodiscard]] virtual std::optional<BackendStop> run_until_done(
      std::uint32_t seq, const Watchdog& watchdog, const DoorbellHandler& on_doorbell) = 0;
  [[nodiscard]] virtual MachineRegisters registers() = 0;
  [[nodiscard]] virtual std::uint64_t round_trips() const = 0;
  // CPU time the machine spent outside the threads that drive it (a QEMU process), for
  // a front-end's per-core figures; zero where the guest runs in the caller's own
  // thread (KVM_RUN), whose CPU time the caller measures itself.
  [[nodiscard]] virtual std::chrono::nanoseconds outside_cpu_time() const {
    return std::chrono::nanoseconds{0};
  }
  // The caller drives the machine from a thread kept on `cpu` (nullopt: no longer kept):
  // the machine's own threads (a QEMU process) go there too, and the host stops spinning
  // while it waits (the guest needs that CPU). On KVM the guest runs in the caller's
  // thread: nothing to do. Never throws: where threads cannot be moved, they stay.
  virtual void share_cpu(std::optional<unsigned> cpu) { (void)cpu; }
};

// The machine itself is gone (QEMU exited, or closed its connection): nothing more
// can run on it. what() says how it ended ("QEMU exited (signal 9) ...").
class BackendGone : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class BackendKind { Kvm, Qemu, Auto };
// "kvm", "qemu", "auto"; throws std::invalid_argument naming the choices otherwise.
BackendKind parse_backend_kind(std::string_view text);

// No backend can run here; what() says why for each one tried.
class NoBackend : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Why `kind` cannot run here (no /dev/kvm, QEMU not installed; for Auto: both), or
// nullopt when it can be tried.
std::optional<std::string> backend_unavailable_reason(BackendKind kind);
// The name the backend reports (Backend::name()) for Kvm and Qemu; Auto resolves first.
std::string_view backend_name(BackendKind kind);
// Auto resolved: Kvm where /dev/kvm works, else Qemu (whether or not it is installed).
BackendKind resolve_backend_kind(BackendKind kind);

// Auto: KVM where /dev/kvm works, else QEMU TCG where qemu-system-x86_64 is installed,
// else NoBackend. Kvm/Qemu: that one, or its own exception.
std::unique_ptr<Backend> make_backend(BackendKind kind, std::size_t memory_bytes);

}  // namespace pagelab::lab

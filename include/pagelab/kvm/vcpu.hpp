#pragma once
// One virtual CPU (rust-vmm kvm-ioctls' `VcpuFd`): register state, MSRs, CPUID, and
// run() with a watchdog that turns a guest that never exits into a HangExit.
#include <linux/kvm.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "pagelab/kvm/exit.hpp"
#include "pagelab/kvm/file_descriptor.hpp"

namespace pagelab::kvm {

// The signal the run() watchdog uses (a realtime signal, handler installed on first
// use). Do not block it on threads that run vCPUs or use it for anything else.
int watchdog_signal();

class Vcpu {
 public:
  // Made by Vm::create_vcpu(); maps kvm_run (`mmap_size` bytes) from the vCPU fd.
  Vcpu(FileDescriptor fd, std::size_t mmap_size);

  [[nodiscard]] kvm_regs regs() const;
  void set_regs(const kvm_regs& regs);
  [[nodiscard]] kvm_sregs sregs() const;
  void set_sregs(const kvm_sregs& sregs);
  // Throws KvmError when KVM does not accept the MSR index.
  [[nodiscard]] std::uint64_t get_msr(std::uint32_t index) const;
  void set_msr(std::uint32_t index, std::uint64_t value);
  void set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
  // KVM_GET_VCPU_EVENTS (KVM_CAP_VCPU_EVENTS): pending exception, NMI, triple fault...
  [[nodiscard]] kvm_vcpu_events events() const;
  void set_events(const kvm_vcpu_events& events);

  // KVM_RUN until a real exit. Signals that interrupt KVM_RUN are absorbed and the
  // vCPU re-entered. With a watchdog, a guest that does not exit within that time
  // is kicked out and reported as HangExit; the vCPU stays usable (set RIP and run
  // again). Throws KvmError if KVM_RUN itself fails.
  [[nodiscard]] Exit run(std::optional<std::chrono::milliseconds> watchdog = std::nullopt);

  // Answer the last IoExit with direction in: `data` must be size * count bytes.
  // Takes effect at the next run().
  void complete_io_in(std::span<const std::uint8_t> data);
  // Answer the last MmioExit read: `data` must be its length bytes.
  void complete_mmio_read(std::span<const std::uint8_t> data);

  [[nodiscard]] kvm_run& run_struct();
  [[nodiscard]] const kvm_run& run_struct() const;
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  [[nodiscard]] Exit decode_exit();

  FileDescriptor fd_;
  Mapping run_;
  // Where the last IN exit wants its data, checked against the mapping when decoded.
  std::optional<std::size_t> pending_io_in_offset_;
  std::size_t pending_io_in_length_ = 0;
  bool pending_mmio_read_ = false;
};

}  // namespace pagelab::kvm

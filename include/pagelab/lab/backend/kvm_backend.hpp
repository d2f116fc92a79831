#pragma once
// The KVM backend: one VM, one vCPU, guest RAM in one memory slot; the doorbell is a
// port-I/O VM exit.
#include "pagelab/kvm/guest_memory.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/kvm/vcpu.hpp"
#include "pagelab/kvm/vm.hpp"
#include "pagelab/lab/backend/backend.hpp"

namespace pagelab::lab {

class KvmBackend : public Backend {
 public:
  // Opens /dev/kvm (throws kvm::KvmError) and gives the vCPU the supported CPUID.
  explicit KvmBackend(std::size_t memory_bytes);

  [[nodiscard]] std::string_view name() const override { return "kvm"; }
  [[nodiscard]] std::string_view round_trip_name() const override { return "VM exits"; }
  [[nodiscard]] GuestRam& ram() override { return ram_; }
  void start() override;
  void reset() override;
  [[nodiscard]] std::optional<BackendStop> run_until_done(
      std::uint32_t seq, const Watchdog& watchdog, const DoorbellHandler& on_doorbell) override;
  [[nodiscard]] MachineRegisters registers() override;
  [[nodiscard]] std::uint64_t round_trips() const override { return exits_; }

  [[nodiscard]] kvm::Vcpu& vcpu() { return vcpu_; }
  [[nodiscard]] kvm::GuestMemory& memory() { return ram_; }

 private:
  kvm::System system_;
  kvm::Vm vm_;
  kvm::GuestMemory ram_;
  kvm::Vcpu vcpu_;
  std::vector<kvm_cpuid_entry2> cpuid_;
  std::uint64_t exits_ = 0;
};

}  // namespace pagelab::lab

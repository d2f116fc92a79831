#pragma once
// One KVM virtual machine: memory slots and vCPUs (rust-vmm kvm-ioctls' `VmFd`).
#include <cstddef>
#include <cstdint>

#include "pagelab/kvm/file_descriptor.hpp"
#include "pagelab/kvm/guest_memory.hpp"
#include "pagelab/kvm/vcpu.hpp"
#include "pagelab/paging/address.hpp"

namespace pagelab::kvm {

// Where KVM may put its real-mode helper pages (Intel without unrestricted guest
// needs a TSS and an identity-map page table). Just below 4 GiB, above any RAM we
// give the guest, as QEMU does.
inline constexpr paging::GuestPhys kDefaultTssAddr{0xfffb'd000};
inline constexpr paging::GuestPhys kDefaultIdentityMapAddr{0xfffb'c000};

class Vm {
 public:
  // Made by System::create_vm(); `vcpu_mmap_size` is KVM_GET_VCPU_MMAP_SIZE.
  // Sets the TSS and identity-map addresses where KVM supports them.
  Vm(FileDescriptor fd, std::size_t vcpu_mmap_size);

  // KVM_SET_USER_MEMORY_REGION: expose `memory` at its base. The GuestMemory must
  // outlive the slot (remove_memory or the Vm's destruction).
  void set_memory(std::uint32_t slot, GuestMemory& memory, std::uint32_t flags = 0);
  // The raw form, for callers that own their own mapping.
  void set_memory_region(std::uint32_t slot, paging::GuestPhys base, std::size_t size, void* host,
                         std::uint32_t flags = 0);
  // Deletes the slot (size 0).
  void remove_memory(std::uint32_t slot);

  // KVM_CREATE_VCPU; the Vcpu stays valid after the Vm object is gone (the kernel
  // keeps the VM alive while a vCPU fd is open).
  [[nodiscard]] Vcpu create_vcpu(unsigned id);
  // KVM_CHECK_EXTENSION on the VM fd (some caps are per VM).
  [[nodiscard]] int check_extension(long cap) const;

  void set_tss_addr(paging::GuestPhys addr);
  void set_identity_map_addr(paging::GuestPhys addr);

  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] std::size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }

 private:
  FileDescriptor fd_;
  std::size_t vcpu_mmap_size_;
};

}  // namespace pagelab::kvm

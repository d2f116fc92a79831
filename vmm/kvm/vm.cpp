#include "pagelab/kvm/vm.hpp"

#include <sys/mman.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstdint>

#include "ioctl.hpp"

namespace pagelab::kvm {

Vm::Vm(FileDescriptor fd, std::size_t vcpu_mmap_size)
    : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {
  // Intel without unrestricted guest runs real mode through vm86 and needs these
  // three pages; KVM documents both as required before the first vCPU on such hosts.
  if (check_extension(KVM_CAP_SET_TSS_ADDR) > 0) {
    set_tss_addr(kDefaultTssAddr);
  }
  if (check_extension(KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
    set_identity_map_addr(kDefaultIdentityMapAddr);
  }
}

void Vm::set_memory(std::uint32_t slot, GuestMemory& memory, std::uint32_t flags) {
  set_memory_region(slot, memory.base(), memory.size(), memory.host(memory.base(), memory.size()),
                    flags);
}

void Vm::set_memory_region(std::uint32_t slot, paging::GuestPhys base, std::size_t size, void* host,
                           std::uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = base.value();
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<std::uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    throw KvmError(
        "KVM_SET_USER_MEMORY_REGION", errno,
        fmt::format("slot {} GPA {:#x} size {:#x} flags {:#x}", slot, base.value(), size, flags));
  }
}

void Vm::remove_memory(std::uint32_t slot) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.memory_size = 0;
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    throw KvmError("KVM_SET_USER_MEMORY_REGION", errno, fmt::format("deleting slot {}", slot));
  }
}

Vcpu Vm::create_vcpu(unsigned id) {
  const int fd = PAGELAB_KVM_IOCTL(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
  return Vcpu(FileDescriptor(fd), vcpu_mmap_size_);
}

int Vm::check_extension(long cap) const {
  return PAGELAB_KVM_IOCTL(fd_.get(), KVM_CHECK_EXTENSION, cap);
}

void Vm::set_tss_addr(paging::GuestPhys addr) {
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr.value()));
}

void Vm::set_identity_map_addr(paging::GuestPhys addr) {
  const std::uint64_t value = addr.value();
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &value);
}

}  // namespace pagelab::kvm

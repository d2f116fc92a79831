#pragma once
// /dev/kvm itself: API version, capabilities, supported CPUID, and the factory for
// VMs (rust-vmm kvm-ioctls' `Kvm`).
#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pagelab/kvm/file_descriptor.hpp"
#include "pagelab/kvm/vm.hpp"

namespace pagelab::kvm {

// The only KVM API version there has ever been (KVM_GET_API_VERSION).
inline constexpr int kExpectedApiVersion = KVM_API_VERSION;

class System {
 public:
  // Opens the device and checks the API version; throws KvmError otherwise.
  static System open(const std::string& path = "/dev/kvm");
  // nullopt when `path` can be opened, reports API 12 and can create a VM; else a
  // short reason a test can print when it skips ("/dev/kvm does not exist",
  // "cannot open /dev/kvm: Permission denied", ...).
  static std::optional<std::string> unavailable_reason(const std::string& path = "/dev/kvm");

  [[nodiscard]] int api_version() const;
  // KVM_CHECK_EXTENSION on /dev/kvm: 0 when absent, else a cap-specific positive value.
  [[nodiscard]] int check_extension(long cap) const;
  [[nodiscard]] std::size_t vcpu_mmap_size() const;
  [[nodiscard]] std::vector<kvm_cpuid_entry2> supported_cpuid() const;
  [[nodiscard]] std::vector<std::uint32_t> msr_index_list() const;
  [[nodiscard]] Vm create_vm() const;
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  explicit System(FileDescriptor fd) : fd_(std::move(fd)) {}
  FileDescriptor fd_;
};

}  // namespace pagelab::kvm

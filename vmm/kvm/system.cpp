#include "pagelab/kvm/system.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ioctl.hpp"
#include "pagelab/kvm/flex_array_abi.hpp"

namespace pagelab::kvm {
namespace {

// KVM_GET_SUPPORTED_CPUID wants the caller to guess the count; E2BIG means "more".
constexpr std::uint32_t kInitialCpuidEntries = 64;
constexpr std::uint32_t kMaxCpuidEntries = 4096;

}  // namespace

System System::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    throw KvmError("open " + path, errno,
                   errno == EACCES ? "add yourself to the 'kvm' group or run as root" : "");
  }
  System system{FileDescriptor(fd)};
  const int version = system.api_version();
  if (version != kExpectedApiVersion) {
    throw KvmError("KVM_GET_API_VERSION", 0,
                   fmt::format("{} reports API version {}, pagelab needs {}", path, version,
                               kExpectedApiVersion));
  }
  return system;
}

std::optional<std::string> System::unavailable_reason(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return path + " does not exist";
    }
    return fmt::format("cannot stat {}: {}", path, std::strerror(errno));
  }
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    return fmt::format("cannot open {}: {}", path, std::strerror(errno));
  }
  const FileDescriptor device(fd);
  const int version = ::ioctl(device.get(), KVM_GET_API_VERSION, 0);
  if (version != kExpectedApiVersion) {
    return fmt::format("{} reports KVM API version {}, need {}", path, version,
                       kExpectedApiVersion);
  }
  // Opening works even when another hypervisor holds VMX/SVM; creating a VM does not.
  const int vm = ::ioctl(device.get(), KVM_CREATE_VM, 0);
  if (vm < 0) {
    return fmt::format("KVM_CREATE_VM on {} fails: {}", path, std::strerror(errno));
  }
  const FileDescriptor vm_fd(vm);
  return std::nullopt;
}

int System::api_version() const {
  return PAGELAB_KVM_IOCTL(fd_.get(), KVM_GET_API_VERSION, 0);
}

int System::check_extension(long cap) const {
  return PAGELAB_KVM_IOCTL(fd_.get(), KVM_CHECK_EXTENSION, cap);
}

std::size_t System::vcpu_mmap_size() const {
  return static_cast<std::size_t>(PAGELAB_KVM_IOCTL(fd_.get(), KVM_GET_VCPU_MMAP_SIZE, 0));
}

std::vector<kvm_cpuid_entry2> System::supported_cpuid() const {
  for (std::uint32_t capacity = kInitialCpuidEntries; capacity <= kMaxCpuidEntries; capacity *= 2) {
    std::vector<std::uint64_t> storage(
        (sizeof(abi::Cpuid2Header) + capacity * sizeof(kvm_cpuid_entry2) + 7) / 8);
    auto* header = reinterpret_cast<abi::Cpuid2Header*>(storage.data());
    header->nent = capacity;
    if (::ioctl(fd_.get(), abi::kGetSupportedCpuid, header) == 0) {
      const auto* entries = reinterpret_cast<const kvm_cpuid_entry2*>(header + 1);
      return {entries, entries + std::min(header->nent, capacity)};
    }
    if (errno != E2BIG) {
      throw KvmError("KVM_GET_SUPPORTED_CPUID", errno);
    }
  }
  throw KvmError("KVM_GET_SUPPORTED_CPUID", E2BIG,
                 fmt::format("more than {} entries", kMaxCpuidEntries));
}

std::vector<std::uint32_t> System::msr_index_list() const {
  // First call with nmsrs = 0 fails with E2BIG and says how many there are.
  abi::MsrListHeader probe{};
  if (::ioctl(fd_.get(), abi::kGetMsrIndexList, &probe) == 0) {
    return {};
  }
  if (errno != E2BIG) {
    throw KvmError("KVM_GET_MSR_INDEX_LIST", errno);
  }
  const std::uint32_t capacity = probe.nmsrs;
  std::vector<std::uint32_t> storage(1 + capacity);
  auto* header = reinterpret_cast<abi::MsrListHeader*>(storage.data());
  header->nmsrs = capacity;
  detail::checked_ioctl(fd_.get(), abi::kGetMsrIndexList, "KVM_GET_MSR_INDEX_LIST", header);
  const std::uint32_t count = std::min(header->nmsrs, capacity);
  return {storage.begin() + 1, storage.begin() + 1 + count};
}

Vm System::create_vm() const {
  const int fd = PAGELAB_KVM_IOCTL(fd_.get(), KVM_CREATE_VM, 0);
  return Vm(FileDescriptor(fd), vcpu_mmap_size());
}

}  // namespace pagelab::kvm

#include "pagelab/kvm/vcpu.hpp"

#include <sys/mman.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "ioctl.hpp"
#include "pagelab/kvm/flex_array_abi.hpp"
#include "watchdog.hpp"

namespace pagelab::kvm {
namespace {

// struct kvm_msrs with room for exactly one entry, in its C layout.
struct OneMsr {
  abi::MsrsHeader header{};
  kvm_msr_entry entry{};
};
static_assert(offsetof(OneMsr, entry) == sizeof(abi::MsrsHeader));

// Layout of struct kvm_run's emulation_failure overlay: ndata counts the u64s after
// it, and flags + insn_size/insn_bytes are 3 of them.
constexpr std::uint32_t kEmulationFailureInsnWords = 3;

}  // namespace

Vcpu::Vcpu(FileDescriptor fd, std::size_t mmap_size) : fd_(std::move(fd)) {
  if (mmap_size < sizeof(kvm_run)) {
    throw KvmError("KVM_GET_VCPU_MMAP_SIZE", 0,
                   fmt::format("{} bytes is smaller than struct kvm_run", mmap_size));
  }
  void* address = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (address == MAP_FAILED) {
    throw KvmError("mmap kvm_run", errno, fmt::format("{} bytes", mmap_size));
  }
  run_ = Mapping(address, mmap_size);
}

kvm_run& Vcpu::run_struct() {
  return *static_cast<kvm_run*>(run_.get());
}
const kvm_run& Vcpu::run_struct() const {
  return *static_cast<const kvm_run*>(run_.get());
}

kvm_regs Vcpu::regs() const {
  kvm_regs regs{};
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_GET_REGS, &regs);
  return regs;
}

void Vcpu::set_regs(const kvm_regs& regs) {
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_SET_REGS, &regs);
}

kvm_sregs Vcpu::sregs() const {
  kvm_sregs sregs{};
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_GET_SREGS, &sregs);
  return sregs;
}

void Vcpu::set_sregs(const kvm_sregs& sregs) {
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_SET_SREGS, &sregs);
}

std::uint64_t Vcpu::get_msr(std::uint32_t index) const {
  OneMsr msrs;
  msrs.header.nmsrs = 1;
  msrs.entry.index = index;
  // The ioctl returns how many MSRs it processed; 0 means KVM refused this index.
  if (detail::checked_ioctl(fd_.get(), abi::kGetMsrs, "KVM_GET_MSRS", &msrs) != 1) {
    throw KvmError("KVM_GET_MSRS", 0, fmt::format("MSR {:#x} is not readable here", index));
  }
  return msrs.entry.data;
}

void Vcpu::set_msr(std::uint32_t index, std::uint64_t value) {
  OneMsr msrs;
  msrs.header.nmsrs = 1;
  msrs.entry.index = index;
  msrs.entry.data = value;
  if (detail::checked_ioctl(fd_.get(), abi::kSetMsrs, "KVM_SET_MSRS", &msrs) != 1) {
    throw KvmError("KVM_SET_MSRS", 0, fmt::format("MSR {:#x} rejected value {:#x}", index, value));
  }
}

void Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  std::vector<std::uint64_t> storage(
      (sizeof(abi::Cpuid2Header) + entries.size() * sizeof(kvm_cpuid_entry2) + 7) / 8);
  auto* header = reinterpret_cast<abi::Cpuid2Header*>(storage.data());
  header->nent = static_cast<std::uint32_t>(entries.size());
  std::copy(entries.begin(), entries.end(), reinterpret_cast<kvm_cpuid_entry2*>(header + 1));
  detail::checked_ioctl(fd_.get(), abi::kSetCpuid2, "KVM_SET_CPUID2", header);
}

kvm_vcpu_events Vcpu::events() const {
  kvm_vcpu_events events{};
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_GET_VCPU_EVENTS, &events);
  return events;
}

void Vcpu::set_events(const kvm_vcpu_events& events) {
  PAGELAB_KVM_IOCTL(fd_.get(), KVM_SET_VCPU_EVENTS, &events);
}

Exit Vcpu::run(std::optional<std::chrono::milliseconds> watchdog) {
  kvm_run& run = run_struct();
  std::optional<detail::WatchdogArm> arm;
  if (watchdog) {
    arm.emplace(&run, *watchdog);
  }
  for (;;) {
    if (::ioctl(fd_.get(), KVM_RUN, 0) == 0) {
      break;
    }
    const int error = errno;
    if (error == EINTR && arm && arm->expired()) {
      arm.reset();
      run.immediate_exit = 0;
      // The interrupted instruction (e.g. an IN) may still be pending: nothing to answer.
      pending_io_in_offset_.reset();
      pending_mmio_read_ = false;
      return HangExit{*watchdog};
    }
    if (error == EINTR || error == EAGAIN) {
      // Some other signal: the guest has not exited, go back in.
      continue;
    }
    arm.reset();
    run.immediate_exit = 0;
    throw KvmError("KVM_RUN", error);
  }
  // The timer may have fired after KVM_RUN returned a real exit; that is not a hang,
  // but immediate_exit must not leak into the next run.
  arm.reset();
  run.immediate_exit = 0;
  return decode_exit();
}

Exit Vcpu::decode_exit() {
  const kvm_run& run = run_struct();
  const auto* page = static_cast<const std::uint8_t*>(run_.get());
  pending_io_in_offset_.reset();
  pending_mmio_read_ = false;
  switch (run.exit_reason) {
    case KVM_EXIT_IO: {
      IoExit io;
      io.out = run.io.direction == KVM_EXIT_IO_OUT;
      io.port = run.io.port;
      io.size = run.io.size;
      io.count = run.io.count;
      // All 64-bit and checked piecewise: size, count and offset are not to be trusted.
      const std::uint64_t length = std::uint64_t{io.size} * io.count;
      const std::uint64_t offset = run.io.data_offset;
      if (offset > run_.size() || length > run_.size() - offset) {
        throw KvmError("KVM_RUN", 0,
                       fmt::format("I/O exit data {:#x}+{:#x} lies outside the {:#x}-byte "
                                   "kvm_run mapping",
                                   offset, length, run_.size()));
      }
      if (io.out) {
        io.data.assign(page + offset, page + offset + length);
      } else {
        io.data.assign(length, 0);
        pending_io_in_offset_ = offset;
        pending_io_in_length_ = length;
      }
      return io;
    }
    case KVM_EXIT_MMIO: {
      MmioExit mmio;
      mmio.address = run.mmio.phys_addr;
      mmio.write = run.mmio.is_write != 0;
      mmio.length = std::min<std::uint32_t>(run.mmio.len, sizeof(run.mmio.data));
      std::memcpy(mmio.data.data(), run.mmio.data, sizeof(run.mmio.data));
      pending_mmio_read_ = !mmio.write;
      return mmio;
    }
    case KVM_EXIT_HLT:
      return HltExit{};
    case KVM_EXIT_SHUTDOWN:
      return ShutdownExit{};
    case KVM_EXIT_INTERNAL_ERROR: {
      InternalErrorExit internal;
      internal.suberror = run.internal.suberror;
      const std::uint32_t ndata =
          std::min<std::uint32_t>(run.internal.ndata, std::size(run.internal.data));
      internal.data.assign(run.internal.data, run.internal.data + ndata);
      if (run.internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
          ndata >= kEmulationFailureInsnWords &&
          (run.emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
        const std::size_t size = std::min<std::size_t>(run.emulation_failure.insn_size,
                                                       sizeof(run.emulation_failure.insn_bytes));
        internal.instruction_bytes.assign(run.emulation_failure.insn_bytes,
                                          run.emulation_failure.insn_bytes + size);
      }
      return internal;
    }
    case KVM_EXIT_FAIL_ENTRY:
      return FailEntryExit{run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu};
    default:
      return OtherExit{run.exit_reason};
  }
}

void Vcpu::complete_io_in(std::span<const std::uint8_t> data) {
  if (!pending_io_in_offset_) {
    throw std::logic_error("complete_io_in: the last exit was not an I/O in");
  }
  if (data.size() != pending_io_in_length_) {
    throw std::invalid_argument(fmt::format("complete_io_in: the guest reads {} bytes, got {}",
                                            pending_io_in_length_, data.size()));
  }
  std::memcpy(static_cast<std::uint8_t*>(run_.get()) + *pending_io_in_offset_, data.data(),
              data.size());
  pending_io_in_offset_.reset();
}

void Vcpu::complete_mmio_read(std::span<const std::uint8_t> data) {
  kvm_run& run = run_struct();
  if (!pending_mmio_read_) {
    throw std::logic_error("complete_mmio_read: the last exit was not an MMIO read");
  }
  if (data.size() != run.mmio.len || data.size() > sizeof(run.mmio.data)) {
    throw std::invalid_argument(fmt::format("complete_mmio_read: the guest reads {} bytes, got {}",
                                            run.mmio.len, data.size()));
  }
  std::memcpy(run.mmio.data, data.data(), data.size());
  pending_mmio_read_ = false;
}

}  // namespace pagelab::kvm

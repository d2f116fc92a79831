#pragma once
// Typed vCPU exits. Everything is copied out of kvm_run (which the guest influences
// and the next KVM_RUN overwrites), so an Exit stays valid and safe to keep.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace pagelab::kvm {

struct IoExit {
  bool out = false;
  std::uint16_t port = 0;
  std::uint8_t size = 0;    // bytes per element: 1, 2 or 4
  std::uint32_t count = 0;  // > 1 for REP INS/OUTS
  // OUT: the bytes written (size * count). IN: zeros; answer with Vcpu::complete_io_in.
  std::vector<std::uint8_t> data;
};

struct MmioExit {
  std::uint64_t address = 0;  // guest-physical
  bool write = false;
  std::uint32_t length = 0;  // 1..8
  // Write: the bytes written (first `length`). Read: answer with Vcpu::complete_mmio_read.
  std::array<std::uint8_t, 8> data{};
};

struct HltExit {};

// Triple fault (or INIT) on x86.
struct ShutdownExit {};

struct InternalErrorExit {
  std::uint32_t suberror = 0;       // KVM_INTERNAL_ERROR_*
  std::vector<std::uint64_t> data;  // internal.data[0..ndata)
  // The bytes of the instruction KVM failed to emulate, when KVM reported them
  // (suberror KVM_INTERNAL_ERROR_EMULATION with FLAG_INSTRUCTION_BYTES); else empty.
  std::vector<std::uint8_t> instruction_bytes;
};

struct FailEntryExit {
  std::uint64_t hardware_reason = 0;
  std::uint32_t cpu = 0;
};

// No exit within the watchdog's time: the vCPU was kicked out (immediate_exit).
struct HangExit {
  std::chrono::milliseconds after{0};
};

struct OtherExit {
  std::uint32_t reason = 0;  // KVM_EXIT_*
};

using Exit = std::variant<IoExit, MmioExit, HltExit, ShutdownExit, InternalErrorExit, FailEntryExit,
                          HangExit, OtherExit>;

// One line, e.g. "I/O out port 0xe9 size 1: 0x42",
// "KVM_EXIT_INTERNAL_ERROR suberror 1 (emulation failure)", "hang: no exit within 2000 ms".
std::string describe(const Exit& exit);
// "KVM_EXIT_HLT", ..., "KVM_EXIT_<n>" for unknown numbers.
std::string exit_reason_name(std::uint32_t reason);
// "emulation failure", "simultaneous exceptions", "event delivery", "unexpected exit
// reason", or "unknown".
std::string internal_error_name(std::uint32_t suberror);

}  // namespace pagelab::kvm

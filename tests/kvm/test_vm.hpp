#pragma once
// A minimal VM for the kvm-layer tests: one memory slot at GPA 0 and one vCPU that
// starts in real mode with CS base 0, running hand-assembled code.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "pagelab/kvm/kvm.hpp"
#include "pagelab/paging/bits.hpp"

namespace pagelab::kvm::testing {

// Every test that touches /dev/kvm starts with this, so it skips (with the reason)
// on machines without KVM instead of failing.
#define PAGELAB_REQUIRE_KVM()                                      \
  do {                                                             \
    if (auto why = ::pagelab::kvm::System::unavailable_reason()) { \
      GTEST_SKIP() << "needs /dev/kvm: " << *why;                  \
    }                                                              \
  } while (0)

// Where the tests put their code (below 64 KiB so a real-mode IP reaches it).
inline constexpr paging::GuestPhys kCodeGpa{0x1000};

// Segment attribute values (SDM vol. 3 §3.4.5.1 descriptor types).
inline constexpr std::uint8_t kTypeCodeExecReadAccessed = 0xb;
inline constexpr std::uint8_t kTypeDataReadWriteAccessed = 0x3;
inline constexpr std::uint8_t kTypeTss32Busy = 0xb;
inline constexpr std::uint8_t kTypeLdt = 0x2;

struct TestVm {
  explicit TestVm(std::size_t memory_size = 0x10000)
      : system(System::open()),
        vm(system.create_vm()),
        memory(paging::GuestPhys{0}, memory_size),
        vcpu(vm.create_vcpu(0)) {
    vm.set_memory(0, memory);
    enter_real_mode(kCodeGpa.value());
  }

  void load(paging::GuestPhys at, std::initializer_list<std::uint8_t> code) {
    const std::vector<std::uint8_t> bytes(code);
    memory.write_bytes(at, bytes);
  }

  // CS = DS = ... = 0, IP = ip: flat real mode over the first 64 KiB.
  void enter_real_mode(std::uint64_t ip) {
    kvm_sregs sregs = vcpu.sregs();
    for (kvm_segment* seg : {&sregs.cs, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss}) {
      seg->base = 0;
      seg->selector = 0;
    }
    sregs.cr0 &= ~(paging::Cr0::Pe | paging::Cr0::Pg);
    vcpu.set_sregs(sregs);
    set_ip(ip);
  }

  // Flat 32-bit protected mode without paging, set directly through KVM_SET_SREGS
  // (no GDT needed until a segment register is reloaded), IDT of limit 0 so that any
  // exception escalates to a triple fault.
  void enter_protected_mode_32(std::uint64_t eip) {
    kvm_sregs sregs = vcpu.sregs();
    kvm_segment code{};
    code.base = 0;
    code.limit = 0xffff'ffff;
    code.selector = 0x08;
    code.type = kTypeCodeExecReadAccessed;
    code.present = 1;
    code.dpl = 0;
    code.db = 1;
    code.s = 1;
    code.l = 0;
    code.g = 1;
    kvm_segment data = code;
    data.selector = 0x10;
    data.type = kTypeDataReadWriteAccessed;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = kvm_segment{};
    sregs.tr.limit = 0x67;
    sregs.tr.type = kTypeTss32Busy;
    sregs.tr.present = 1;
    sregs.ldt = kvm_segment{};
    sregs.ldt.type = kTypeLdt;
    sregs.ldt.unusable = 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = (sregs.cr0 | paging::Cr0::Pe) & ~paging::Cr0::Pg;
    vcpu.set_sregs(sregs);
    set_ip(eip);
  }

  void set_ip(std::uint64_t ip) {
    kvm_regs regs{};
    regs.rip = ip;
    regs.rflags = paging::Rflags::Fixed1;
    regs.rsp = 0x8000;
    vcpu.set_regs(regs);
  }

  System system;
  Vm vm;
  GuestMemory memory;
  Vcpu vcpu;
};

}  // namespace pagelab::kvm::testing

#include "pagelab/lab/lab.hpp"

#include <fmt/core.h>

#include "pagelab/lab/diagnostics.hpp"
#include "pagelab/lab/probe_image.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/walker.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {

using paging::GuestPhys;

namespace {

// Where PROBE_CMD_EXEC code goes: after the probe, in identity-mapped RAM.
constexpr GuestPhys kScratchCode{0x20000};
constexpr std::size_t kScratchCodeMax = 0x1000;

GuestPhys mb(std::uint64_t offset) {
  return GuestPhys(PROBE_MAILBOX_GPA + offset);
}

kvm_segment real_segment(std::uint16_t selector, std::uint8_t type) {
  kvm_segment s{};
  s.base = static_cast<std::uint64_t>(selector) << 4;
  s.limit = 0xffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.s = 1;
  return s;
}

}  // namespace

Lab::Lab(const LabOptions& options)
    : options_(options),
      system_(kvm::System::open()),
      vm_(system_.create_vm()),
      ram_(GuestPhys(0), options.memory_bytes),
      physical_(ram_),
      vcpu_((vm_.set_memory(0, ram_), vm_.create_vcpu(0))) {
  cpu_.entries = system_.supported_cpuid();
  vcpu_.set_cpuid(cpu_.entries);

  paging::FrameAllocator frames(GuestPhys(PROBE_TABLES_GPA),
                                GuestPhys(PROBE_TABLES_GPA + (1 << 20)));
  tables_ = build_mode_tables(physical_, frames, ram_.size(), cpu_.paging_features());

  const auto& image = probe_image();
  ram_.write_bytes(image.load_address, image.bytes);

  // Real mode at 0000:PROBE_LOAD_GPA, as after a far jump from a boot loader.
  auto sregs = vcpu_.sregs();
  sregs.cs = real_segment(0, 0xb);  // execute/read, accessed
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = real_segment(0, 0x3);
  sregs.cr0 = paging::Cr0::Et;
  sregs.cr3 = sregs.cr4 = sregs.efer = 0;
  vcpu_.set_sregs(sregs);
  kvm_regs regs{};
  regs.rip = PROBE_LOAD_GPA;
  regs.rflags = paging::Rflags::Fixed1;
  regs.rsp = PROBE_STACK_TOP;
  vcpu_.set_regs(regs);

  last_ = run_until_report();
}

GuestPhys Lab::place_code(std::span<const std::uint8_t> code) {
  if (code.size() > kScratchCodeMax) {
    throw std::invalid_argument(fmt::format("code snippet of {} bytes is larger than {} bytes",
                                            code.size(), kScratchCodeMax));
  }
  ram_.write_bytes(kScratchCode, code);
  return kScratchCode;
}

namespace {
void require(const ProbeReport& r, const char* step) {
  if (!r.ok())
    throw std::runtime_error(fmt::format("{}: the probe caught {}", step, r.outcome_text()));
}
}  // namespace

void Lab::enter_protected() {
  require(command(PROBE_CMD_ENTER_PROT), "entering protected mode");
}

void Lab::enter_long(paging::PagingMode mode) {
  const bool five = mode == paging::PagingMode::Level5;
  const auto cr3 = five ? tables_.level5 : tables_.level4;
  require(command(PROBE_CMD_WRITE_CR4, paging::Cr4::Pae | (five ? paging::Cr4::La57 : 0)),
          "setting CR4.PAE");
  require(command(PROBE_CMD_WRITE_CR3, cr3.value()), "loading CR3");
  require(command(PROBE_CMD_WRMSR, paging::Efer::Msr, last_.efer | paging::Efer::Lme),
          "setting EFER.LME");
  require(command(PROBE_CMD_WRITE_CR0, last_.cr0 | paging::Cr0::Pg), "setting CR0.PG");
  require(command(PROBE_CMD_JUMP_CS, PROBE_SEL_CODE64), "jumping to 64-bit code");
  if (last_.code_bits != 64 || (last_.efer & paging::Efer::Lma) == 0) {
    throw std::runtime_error("entering long mode: the probe is not in 64-bit mode afterwards");
  }
}

ProbeReport Lab::command(std::uint32_t cmd, std::uint64_t arg0, std::uint64_t arg1,
                         std::uint64_t arg2, std::uint64_t arg3) {
  ram_.write<std::uint32_t>(mb(MB_CMD), cmd);
  ram_.write<std::uint64_t>(mb(MB_ARG0), arg0);
  ram_.write<std::uint64_t>(mb(MB_ARG1), arg1);
  ram_.write<std::uint64_t>(mb(MB_ARG2), arg2);
  ram_.write<std::uint64_t>(mb(MB_ARG3), arg3);
  // The sequence number goes last: it is what tells the probe the command is ready.
  ram_.write<std::uint32_t>(mb(MB_SEQ), ++seq_);
  last_ = run_until_report();
  return last_;
}

ProbeReport Lab::run_until_report() {
  for (;;) {
    const auto exit = vcpu_.run(options_.watchdog);
    ++exits_;
    if (const auto* io = std::get_if<kvm::IoExit>(&exit)) {
      if (io->out && io->port == PROBE_PORT_DOORBELL &&
          ram_.read<std::uint32_t>(mb(MB_DONE_SEQ)) == seq_) {
        return read_report();
      }
    }
    abnormal(exit);
  }
}

ProbeReport Lab::read_report() const {
  ProbeReport r;
  const auto status = ram_.read<std::uint32_t>(mb(MB_STATUS));
  // The guest is untrusted: anything but a known status is a protocol error.
  if (status > static_cast<std::uint32_t>(ProbeStatus::BadCommand)) {
    throw std::runtime_error(fmt::format("probe reported an unknown status {}", status));
  }
  r.status = static_cast<ProbeStatus>(status);
  r.code_bits = ram_.read<std::uint32_t>(mb(MB_CODE_BITS));
  r.vector = ram_.read<std::uint32_t>(mb(MB_VECTOR));
  r.error_code = ram_.read<std::uint64_t>(mb(MB_ERROR_CODE));
  r.fault_rip = ram_.read<std::uint64_t>(mb(MB_FAULT_RIP));
  r.cr0 = ram_.read<std::uint64_t>(mb(MB_CR0));
  r.cr2 = ram_.read<std::uint64_t>(mb(MB_CR2));
  r.cr3 = ram_.read<std::uint64_t>(mb(MB_CR3));
  r.cr4 = ram_.read<std::uint64_t>(mb(MB_CR4));
  r.efer = ram_.read<std::uint64_t>(mb(MB_EFER));
  r.cs = ram_.read<std::uint16_t>(mb(MB_CS));
  r.ss = ram_.read<std::uint16_t>(mb(MB_SS));
  r.ds = ram_.read<std::uint16_t>(mb(MB_DS));
  r.value = ram_.read<std::uint64_t>(mb(MB_VALUE));
  r.value2 = ram_.read<std::uint64_t>(mb(MB_VALUE2));
  return r;
}

void Lab::abnormal(const kvm::Exit& exit) {
  const auto regs = vcpu_.regs();
  const auto sregs = vcpu_.sregs();
  // Code is read through the guest's own page tables when paging is on, so the
  // disassembly shows what the vCPU was really executing.
  CodeReader read_code = [this, &sregs](
                             std::uint64_t linear,
                             std::size_t len) -> std::optional<std::vector<std::uint8_t>> {
    std::uint64_t physical = linear;
    if ((sregs.cr0 & paging::Cr0::Pg) != 0) {
      paging::CpuState state;
      state.cr0 = sregs.cr0;
      state.cr3 = sregs.cr3;
      state.cr4 = sregs.cr4;
      state.efer = sregs.efer;
      state.features = cpu_.paging_features();
      try {
        if (state.mode() == paging::PagingMode::Pae && paging::load_pdptes(physical_, state)) {
          return std::nullopt;
        }
        const auto walk =
            paging::walk(physical_, state,
                         paging::Access{paging::Linear(linear), paging::AccessType::Fetch,
                                        paging::Privilege::Supervisor});
        const auto* t = std::get_if<paging::Translation>(&walk.outcome);
        if (t == nullptr) return std::nullopt;
        physical = t->physical.value();
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
    // Stay inside the page so a translation holds for every byte.
    len = std::min<std::size_t>(len, 0x1000 - (physical & 0xfff));
    if (!ram_.contains(GuestPhys(physical), len)) return std::nullopt;
    const auto* p = ram_.host(GuestPhys(physical), len);
    return std::vector<std::uint8_t>(p, p + len);
  };
  const auto stop = analyse_abnormal_stop(exit, regs, sregs, read_code);
  throw GuestStopped(stop.kind, describe(stop), to_json(stop));
}

}  // namespace pagelab::lab

#include "pagelab/lab/machine/lab.hpp"

#include <fmt/core.h>

#include <atomic>

#include "pagelab/lab/backend/kvm_backend.hpp"
#include "pagelab/lab/machine/diagnostics.hpp"
#include "pagelab/lab/machine/probe_image.hpp"
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

// CPUID leaves the paging features come from (cpu_features.hpp).
constexpr std::uint32_t kExtendedBase = 0x8000'0000;
constexpr std::uint32_t kStructuredExtendedLeaf = 7;

}  // namespace

Lab::Lab(const LabOptions& options)
    : Lab(make_backend(options.backend, options.memory_bytes), options) {}

Lab::Lab(std::unique_ptr<Backend> backend, const LabOptions& options)
    : options_(options), backend_(std::move(backend)), physical_(backend_->ram()) {
  boot();
  // What CPUID returns to the guest's software is what the architecture's rules follow
  // (reserved bits, which CR4 bits exist): asked inside the guest. A platform may not
  // take it from the table the VMM set (PVM's guest sees no LA57 that its
  // KVM_SET_CPUID2 table has, and SMEP/SMAP that it lacks; `pagelab info` names the
  // difference).
  cpu_.entries = cpuid_from_probe();
  build_tables();
}

void Lab::reset() {
  backend_->reset();
  // As a new machine has it: nothing of the last experiment is left in RAM.
  ram().fill(GuestPhys(0), ram().size(), 0);
  seq_ = 0;
  boot();
  build_tables();
}

void Lab::boot() {
  auto& ram = backend_->ram();
  const auto& image = probe_image();
  ram.write_bytes(image.load_address, image.bytes);
  // The boot report carries MB_SEQ: make sure the mailbox does not look done already.
  ram.write<std::uint32_t>(mb(MB_SEQ), seq_);
  ram.write<std::uint32_t>(mb(MB_DONE_SEQ), ~seq_);
  backend_->start();
  last_ = run_until_report();
}

void Lab::build_tables() {
  paging::FrameAllocator frames(GuestPhys(PROBE_TABLES_GPA),
                                GuestPhys(PROBE_TABLES_GPA + (1 << 20)));
  tables_ = build_mode_tables(physical_, frames, ram().size(), cpu_.paging_features());
}

kvm::Vcpu& Lab::vcpu() {
  auto* kvm = dynamic_cast<KvmBackend*>(backend_.get());
  if (kvm == nullptr) {
    throw std::logic_error(
        fmt::format("this lab runs on {}, which has no KVM vCPU", backend_->name()));
  }
  return kvm->vcpu();
}

std::vector<kvm_cpuid_entry2> Lab::cpuid_from_probe() {
  std::vector<kvm_cpuid_entry2> entries;
  auto ask = [&](std::uint32_t leaf, std::uint32_t subleaf, bool indexed) {
    const auto r = command(PROBE_CMD_CPUID, leaf, subleaf);
    if (!r.ok()) {
      throw std::runtime_error(
          fmt::format("CPUID leaf {:#x} in the guest: {}", leaf, r.outcome_text()));
    }
    kvm_cpuid_entry2 e{};
    e.function = leaf;
    e.index = subleaf;
    e.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    // MB_VALUE = EBX:EAX, MB_VALUE2 = EDX:ECX (probe_abi.h).
    e.eax = static_cast<std::uint32_t>(r.value);
    e.ebx = static_cast<std::uint32_t>(r.value >> 32);
    e.ecx = static_cast<std::uint32_t>(r.value2);
    e.edx = static_cast<std::uint32_t>(r.value2 >> 32);
    entries.push_back(e);
    return e.eax;
  };
  const auto max_basic = ask(0, 0, false);
  if (max_basic >= 1) ask(1, 0, false);
  if (max_basic >= kStructuredExtendedLeaf) ask(kStructuredExtendedLeaf, 0, true);
  const auto max_extended = ask(kExtendedBase, 0, false);
  for (std::uint32_t leaf : {kExtendedBase + 1, cpuid::AddressSizesLeaf}) {
    if (max_extended >= leaf) ask(leaf, 0, false);
  }
  return entries;
}

GuestPhys Lab::place_code(std::span<const std::uint8_t> code) {
  if (code.size() > kScratchCodeMax) {
    throw std::invalid_argument(fmt::format("code snippet of {} bytes is larger than {} bytes",
                                            code.size(), kScratchCodeMax));
  }
  ram().write_bytes(kScratchCode, code);
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
  write_command(cmd, arg0, arg1, arg2, arg3);
  last_ = run_until_report();
  return last_;
}

void Lab::write_command(std::uint32_t cmd, std::uint64_t arg0, std::uint64_t arg1,
                        std::uint64_t arg2, std::uint64_t arg3) {
  auto& ram = backend_->ram();
  ram.write<std::uint32_t>(mb(MB_CMD), cmd);
  ram.write<std::uint64_t>(mb(MB_ARG0), arg0);
  ram.write<std::uint64_t>(mb(MB_ARG1), arg1);
  ram.write<std::uint64_t>(mb(MB_ARG2), arg2);
  ram.write<std::uint64_t>(mb(MB_ARG3), arg3);
  // The sequence number goes last: it is what tells the probe the command is ready.
  // On QEMU the probe may be spinning on it right now, so the compiler must not
  // move the argument stores after it (x86 keeps stores in order).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  ram.write<std::uint32_t>(mb(MB_SEQ), ++seq_);
}

ProbeReport Lab::batch(GuestPhys first, std::uint64_t count, const SyncHandler& on_sync) {
  auto& ram = backend_->ram();
  ram.write<std::uint64_t>(mb(MB_SYNC_AT), 0);
  ram.write<std::uint64_t>(mb(MB_SYNC_GO), 0);
  const std::uint64_t end = first.value() + count * PROBE_BATCH_RECORD;
  const DoorbellHandler on_doorbell = [&] {
    const auto at = std::atomic_ref(*reinterpret_cast<std::uint64_t*>(
                                        ram.host(mb(MB_SYNC_AT), sizeof(std::uint64_t))))
                        .load(std::memory_order_acquire);
    if (at == ram.read<std::uint64_t>(mb(MB_SYNC_GO))) return false;
    // The guest is untrusted: a sync point is one of the batch's records.
    if (at < first.value() || at >= end || (at - first.value()) % PROBE_BATCH_RECORD != 0) {
      throw std::runtime_error(
          fmt::format("the probe stopped at a sync point {:#x} outside its batch", at));
    }
    on_sync(GuestPhys(at));
    // What the host wrote is in memory before the probe may go on.
    std::atomic_ref(
        *reinterpret_cast<std::uint64_t*>(ram.host(mb(MB_SYNC_GO), sizeof(std::uint64_t))))
        .store(at, std::memory_order_release);
    return true;
  };
  write_command(PROBE_CMD_BATCH, first.value(), count, 0, 0);
  last_ = run_until_report(on_doorbell);
  return last_;
}

ProbeReport Lab::run_until_report(const DoorbellHandler& on_doorbell) {
  const auto start = std::chrono::steady_clock::now();
  auto stop = backend_->run_until_done(seq_, Watchdog{options_.watchdog, options_.busy_watchdog},
                                       on_doorbell);
  guest_time_ += std::chrono::steady_clock::now() - start;
  if (stop) abnormal(*stop);
  return read_report();
}

ProbeReport Lab::read_report() const {
  const auto& ram = backend_->ram();
  ProbeReport r;
  const auto status = ram.read<std::uint32_t>(mb(MB_STATUS));
  // The guest is untrusted: anything but a known status is a protocol error.
  if (status > static_cast<std::uint32_t>(ProbeStatus::BadCommand)) {
    throw std::runtime_error(fmt::format("probe reported an unknown status {}", status));
  }
  r.status = static_cast<ProbeStatus>(status);
  r.code_bits = ram.read<std::uint32_t>(mb(MB_CODE_BITS));
  r.vector = ram.read<std::uint32_t>(mb(MB_VECTOR));
  r.error_code = ram.read<std::uint64_t>(mb(MB_ERROR_CODE));
  r.fault_rip = ram.read<std::uint64_t>(mb(MB_FAULT_RIP));
  r.cr0 = ram.read<std::uint64_t>(mb(MB_CR0));
  r.cr2 = ram.read<std::uint64_t>(mb(MB_CR2));
  r.cr3 = ram.read<std::uint64_t>(mb(MB_CR3));
  r.cr4 = ram.read<std::uint64_t>(mb(MB_CR4));
  r.efer = ram.read<std::uint64_t>(mb(MB_EFER));
  r.cs = ram.read<std::uint16_t>(mb(MB_CS));
  r.ss = ram.read<std::uint16_t>(mb(MB_SS));
  r.ds = ram.read<std::uint16_t>(mb(MB_DS));
  r.value = ram.read<std::uint64_t>(mb(MB_VALUE));
  r.value2 = ram.read<std::uint64_t>(mb(MB_VALUE2));
  return r;
}

void Lab::abnormal(const BackendStop& backend_stop) {
  MachineRegisters machine;
  try {
    machine = backend_->registers();
  } catch (const BackendGone& e) {
    // The machine itself is gone (QEMU exited): no registers to show, only its end.
    const std::string kind = e.what();
    throw GuestStopped(kind, kind, nlohmann::json{{"kind", kind}, {"backend", backend_->name()}});
  }
  const auto& regs = machine.regs;
  const auto& sregs = machine.sregs;
  const auto& ram = backend_->ram();
  // Code is read through the guest's own page tables when paging is on, so the
  // disassembly shows what the vCPU was really executing.
  CodeReader read_code = [this, &sregs, &ram](
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
    if (!ram.contains(GuestPhys(physical), len)) return std::nullopt;
    const auto* p = ram.host(GuestPhys(physical), len);
    return std::vector<std::uint8_t>(p, p + len);
  };
  auto stop = analyse_abnormal_stop(backend_stop.exit, regs, sregs, read_code);
  if (stop.state_lost) {
    stop.last_known = LastKnownState{last_, ram.read<std::uint32_t>(mb(MB_CMD)),
                                     ram.read<std::uint64_t>(mb(MB_ARG0))};
  }
  if (!backend_stop.description.empty()) stop.exit_description = backend_stop.description;
  auto json = to_json(stop);
  json["backend"] = std::string(backend_->name());
  throw GuestStopped(stop.kind, describe(stop), std::move(json));
}

}  // namespace pagelab::lab

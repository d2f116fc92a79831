#include "pagelab/lab/platform/platform.hpp"

#include <fmt/core.h>

#include <cctype>

#include "pagelab/kvm/error.hpp"
#include "pagelab/kvm/guest_memory.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/platform/host_machine.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {

using paging::Cr0;
using paging::Cr4;

namespace {

struct NamedCap {
  const char* name;
  long cap;
};

// The capabilities pagelab relies on or reports.
constexpr NamedCap kCaps[] = {
    {"KVM_CAP_SYNC_REGS", KVM_CAP_SYNC_REGS},
    {"KVM_CAP_SET_GUEST_DEBUG", KVM_CAP_SET_GUEST_DEBUG},
    {"KVM_CAP_EXCEPTION_PAYLOAD", KVM_CAP_EXCEPTION_PAYLOAD},
    {"KVM_CAP_X86_TRIPLE_FAULT_EVENT", KVM_CAP_X86_TRIPLE_FAULT_EVENT},
    {"KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT},
    {"KVM_CAP_READONLY_MEM", KVM_CAP_READONLY_MEM},
    {"KVM_CAP_X86_USER_SPACE_MSR", KVM_CAP_X86_USER_SPACE_MSR},
    {"KVM_CAP_VCPU_EVENTS", KVM_CAP_VCPU_EVENTS},
    {"KVM_CAP_TSC_CONTROL", KVM_CAP_TSC_CONTROL},
    {"KVM_CAP_NR_MEMSLOTS", KVM_CAP_NR_MEMSLOTS},
    {"KVM_CAP_EXT_CPUID", KVM_CAP_EXT_CPUID},
};

// Legacy paging (32-bit and PAE): does the guest's MOV CR0 setting PG work?
void probe_legacy_paging(Lab& lab, std::vector<Quirk>& quirks) {
  struct Case {
    const char* id;
    const char* mode;
    std::uint64_t cr4;
    paging::GuestPhys cr3;
  };
  const auto pse = lab.cpu().has(cpuid::Pse) ? Cr4::Pse : 0;
  const Case cases[] = {
      {"legacy-32bit-paging-refused", "32-bit paging", pse, lab.mode_tables().bits32},
      {"legacy-pae-paging-refused", "PAE paging", Cr4::Pae, lab.mode_tables().pae}};
  for (const auto& c : cases) {
    lab.command(PROBE_CMD_WRITE_CR3, c.cr3.value());
    lab.command(PROBE_CMD_WRITE_CR4, c.cr4);
    const auto r = lab.command(PROBE_CMD_WRITE_CR0, lab.last_report().cr0 | Cr0::Pg);
    if (r.faulted()) {
      quirks.push_back({c.id,
                        fmt::format("{} refused: MOV CR0 setting PG with EFER.LME=0 raised {}",
                                    c.mode, r.outcome_text()),
                        true});
    } else {
      lab.command(PROBE_CMD_WRITE_CR0, r.cr0 & ~Cr0::Pg);
    }
    lab.command(PROBE_CMD_WRITE_CR4, 0);
  }
}

// CR4 bits for features CPUID does not report must raise #GP (SDM 2.5, MOV CR4).
// Judged against the CPUID the guest executes (`guest`), which is what the SDM's rule
// refers to; where that differs from the table KVM was given, that is its own quirk.
void probe_cr4_without_cpuid(Lab& lab, const PlatformCpu& guest, std::vector<Quirk>& quirks) {
  struct Case {
    const CpuidBit& feature;
    std::uint64_t cr4_bit;
    const char* name;
  };
  const Case cases[] = {{cpuid::Smep, Cr4::Smep, "CR4.SMEP"},
                        {cpuid::Smap, Cr4::Smap, "CR4.SMAP"},
                        {cpuid::Pku, Cr4::Pke, "CR4.PKE"},
                        {cpuid::Umip, Cr4::Umip, "CR4.UMIP"}};
  for (const auto& c : cases) {
    if (guest.has(c.feature)) continue;
    const auto r = lab.command(PROBE_CMD_WRITE_CR4, c.cr4_bit);
    if (r.ok() && (r.cr4 & c.cr4_bit) != 0) {
      std::string id = fmt::format("cr4-{}-without-cpuid", c.feature.name);
      for (auto& ch : id) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      quirks.push_back({id,
                        fmt::format("{} accepted though CPUID lacks {} (the SDM says #GP(0))",
                                    c.name, c.feature.name),
                        true});
    }
    lab.command(PROBE_CMD_WRITE_CR4, 0);
  }
}

// A reserved bit in a PTE is a protection violation: #PF with P and RSVD (SDM 4.7).
// On its own Lab: the experiment engine needs one fresh from real mode.
void probe_reserved_bit_error_code(const LabOptions& options, std::vector<Quirk>& quirks) {
  constexpr unsigned MaxAddressBits = 52;
  constexpr std::uint32_t PageFaultVector = 14;
  Lab lab(options);
  const unsigned above = lab.cpu().maxphyaddr();
  if (above >= MaxAddressBits) return;  // no reserved address bit to set
  const paging::Linear va(0x40000000);
  Engine engine(lab);
  const auto frame =
      engine.space().map(va, std::nullopt, 0x1000, paging::PageSize::Size4K, paging::Pte::Writable);
  auto& builder = engine.space().builder();
  builder.write_entry(
      va, 1, frame.value() | paging::Pte::Present | paging::Pte::Writable | paging::bit(above));
  engine.start();
  OpAccess read;
  read.address = va;
  const std::vector<Op> ops = {read};
  const auto r = engine.run(ops).front().observed;
  const bool rsvd_fault = r.status == ProbeStatus::Fault && r.vector == PageFaultVector &&
                          (r.error_code & paging::PfError::Rsvd) != 0;
  if (rsvd_fault && (r.error_code & paging::PfError::P) == 0) {
    quirks.push_back(
        {"reserved-bit-pf-without-p",
         fmt::format("a read through a PTE with reserved bit {} set raised #PF error code {:#x}: "
                     "RSVD without P (the SDM says P|RSVD = {:#x})",
                     above, r.error_code, r.error_code | paging::PfError::P),
         true});
  }
}

// What KVM_SET_SREGS does with a 32-bit paging state. On a throwaway vCPU: the
// answer may leave a vCPU in a state no guest code should run in.
void probe_sregs_legacy_paging(const kvm::System& system, const PlatformCpu& cpu,
                               std::vector<Quirk>& quirks) {
  auto vm = system.create_vm();
  kvm::GuestMemory ram(paging::GuestPhys(0), 1 << 20);
  vm.set_memory(0, ram);
  auto vcpu = vm.create_vcpu(0);
  vcpu.set_cpuid(cpu.entries);
  auto s = vcpu.sregs();
  s.cr0 = Cr0::Pe | Cr0::Et | Cr0::Pg;
  s.cr4 = cpu.has(cpuid::Pse) ? Cr4::Pse : 0;
  s.cr3 = 0x1000;  // an empty page directory: nothing runs, KVM only has to accept it
  s.efer = 0;
  try {
    vcpu.set_sregs(s);
    const auto back = vcpu.sregs();
    if ((back.cr0 & Cr0::Pg) == 0) {
      quirks.push_back({"set-sregs-clears-pg",
                        "KVM_SET_SREGS returned success for a 32-bit paging state but silently "
                        "cleared CR0.PG",
                        true});
    }
  } catch (const kvm::KvmError& e) {
    quirks.push_back({"set-sregs-refuses-legacy-paging",
                      fmt::format("KVM_SET_SREGS refused a 32-bit paging state: {}", e.what()),
                      false});
  }
}

}  // namespace

bool PlatformReport::has_quirk(std::string_view id) const {
  for (const auto& q : quirks) {
    if (q.id == id) return true;
  }
  return false;
}

nlohmann::json PlatformReport::to_json() const {
  nlohmann::json j;
  j["backend"] = backend;
  if (on_kvm()) {
    j["flavour"] = {
        {"name", flavour.name}, {"modules", flavour.modules}, {"parameters", flavour.parameters}};
    // "pvm" for kvm_pvm, "intel" for kvm_intel...: the short name scripts match on.
    j["flavour"]["short"] =
        flavour.name.rfind("kvm_", 0) == 0 ? flavour.name.substr(4) : flavour.name;
    j["api_version"] = api_version;
    for (const auto& c : capabilities) j["capabilities"][c.name] = c.value;
  } else {
    // Not KVM: nothing to ask /dev/kvm about.
    j["flavour"] = nullptr;
    j["api_version"] = nullptr;
    j["capabilities"] = nullptr;
  }
  j["cpu"]["vendor"] = cpu.vendor();
  for (const auto& b : reported_cpuid_bits())
    j["cpu"]["features"][std::string(b.name)] = cpu.has(b);
  j["cpu"]["maxphyaddr"] = cpu.maxphyaddr();
  j["cpu"]["linear_address_bits"] = cpu.linear_bits();
  // Where pagelab runs, and so which platform deviation lists apply.
  const auto host = detect_host_machine();
  j["host"] = {{"hypervisor_bit", host.hypervisor_bit},
               {"hypervisor_signature", host.hypervisor_signature},
               {"dmi_vendor", host.dmi_vendor},
               {"nested_in_qemu_tcg", on_kvm() && host.in_qemu_tcg()}};
  j["platform_keys"] = platform_keys(on_kvm());
  j["probed"] = probed;
  if (!probe_error.empty()) j["probe_error"] = probe_error;
  j["quirks"] = nlohmann::json::array();
  for (const auto& q : quirks) {
    j["quirks"].push_back(
        {{"id", q.id}, {"description", q.description}, {"deviation", q.deviation}});
  }
  return j;
}

namespace {

// The probes every backend runs once its Lab is up; `cpu` is the CPUID the guest sees.
void probe_in_protected_mode(Lab& lab, const PlatformCpu& cpu, const LabOptions& options,
                             std::vector<Quirk>& quirks) {
  lab.enter_protected();
  probe_legacy_paging(lab, quirks);
  probe_cr4_without_cpuid(lab, cpu, quirks);
  probe_reserved_bit_error_code(options, quirks);
}

// A guest that stops or a Lab that fails ends the probing: the report keeps why, and
// says the platform was not probed, rather than losing what was already detected.
template <class Probes>
void probe_guest(PlatformReport& r, Probes&& probes) {
  try {
    probes();
    r.probed = true;
  } catch (const GuestStopped& e) {
    r.probe_error = e.report();
  } catch (const std::runtime_error& e) {
    r.probe_error = e.what();
  }
}

// QEMU TCG: no KVM to query; the CPUID is what the guest executes (-cpu max).
PlatformReport detect_qemu_platform(bool run_probe) {
  PlatformReport r;
  LabOptions options;
  options.backend = BackendKind::Qemu;
  Lab lab(options);
  r.backend = std::string(lab.backend_name());
  r.cpu = lab.cpu();
  if (run_probe) probe_guest(r, [&] { probe_in_protected_mode(lab, r.cpu, options, r.quirks); });
  return r;
}

}  // namespace

std::string describe_backend(const Lab& lab) {
  if (lab.backend_name() == "kvm") return kvm::describe(kvm::detect_flavour());
  return fmt::format("{} (QEMU TCG, -cpu max)", lab.backend_name());
}

PlatformReport detect_platform(bool run_probe, BackendKind kind) {
  if (resolve_backend_kind(kind) == BackendKind::Qemu) return detect_qemu_platform(run_probe);
  PlatformReport r;
  r.flavour = kvm::detect_flavour();
  const auto system = kvm::System::open();
  r.api_version = system.api_version();
  for (const auto& c : kCaps) r.capabilities.push_back({c.name, system.check_extension(c.cap)});
  r.cpu.entries = system.supported_cpuid();
  if (!run_probe) return r;
  probe_guest(r, [&] {
    probe_sregs_legacy_paging(system, r.cpu, r.quirks);
    Lab lab;
    PlatformCpu guest;
    guest.entries = lab.cpuid_from_probe();
    std::string only_in_guest, only_in_table;
    for (const auto& b : reported_cpuid_bits()) {
      if (guest.has(b) && !r.cpu.has(b)) only_in_guest += fmt::format(" {}", b.name);
      if (!guest.has(b) && r.cpu.has(b)) only_in_table += fmt::format(" {}", b.name);
    }
    if (!only_in_guest.empty() || !only_in_table.empty()) {
      r.quirks.push_back(
          {"guest-cpuid-differs-from-table",
           fmt::format("CPUID executed in the guest differs from the KVM_SET_CPUID2 table:{}{}",
                       only_in_guest.empty() ? "" : " reports" + only_in_guest,
                       only_in_table.empty() ? "" : "; lacks" + only_in_table),
           true});
    }
    probe_in_protected_mode(lab, guest, LabOptions{}, r.quirks);
  });
  return r;
}

}  // namespace pagelab::lab

#include "pagelab/lab/modes/deviations.hpp"

#include "pagelab/lab/platform/host_machine.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/segment_check.hpp"

namespace pagelab::lab {

namespace {

using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::Write;

bool gp0(const Observation& o) {
  return o.executed && o.stopped.empty() && o.faulted && o.vector == paging::ExceptionVector::Gp &&
         o.error_code == 0;
}

// Bits a MOV to a control register can only carry in 64-bit mode.
constexpr std::uint64_t kUpperHalf = paging::bits(32, 63);

bool accepted(const Observation& o) {
  return o.executed && o.stopped.empty() && !o.faulted;
}

bool refused_by_model(const MatrixCase& c) {
  return !c.expected.allowed;
}

// The guest stopped the way `kind` says ("hang", "triple fault") instead of
// reporting: GuestStopped::kind() leads MatrixCase::observed.stopped.
bool stopped_with(const Observation& o, std::string_view kind) {
  return o.executed && o.stopped.starts_with(kind);
}

bool in_ia32e(const paging::ControlState& s) {
  return (s.efer & Efer::Lma) != 0;
}

// The write sets `mask` in CR4 where it was clear, the model refuses it, and the CPU
// took it anyway (the bit is set afterwards).
bool cr4_bit_accepted_without_cpuid(const MatrixCase& c, std::uint64_t mask) {
  return c.step.what == Write::Cr4 && (c.step.value & mask) && !(c.before.cr4 & mask) &&
         !c.expected.allowed && accepted(c.observed) && (c.observed.after.cr4 & mask);
}

// QEMU 7.2 TCG (Debian qemu-system-x86 1:7.2, -cpu max): what `pagelab modes --backend
// qemu` found on 2026-11-21, each explained from QEMU's target/i386 sources.
void add_qemu_tcg(std::vector<Deviation>& list) {
  const std::string qemu = "qemu-tcg";
  list.push_back(
      {"qemu-cr4-pcide-without-pcid", qemu,
       "SDM 2.5 / MOV CR4: CR4.PCIDE is reserved when CPUID.01H:ECX.PCID=0; setting it raises "
       "#GP(0) (and even with PCID only in IA-32e mode with CR3[11:0]=0)",
       "QEMU 7.2 TCG offers no PCID (-cpu max drops it), but its cr4_reserved_bits() does not "
       "reserve PCIDE for such a CPU: MOV CR4 takes PCIDE in every mode, real mode included",
       "pagelab modes --backend qemu --from long64 --step 'CR4.PCIDE 0->1'",
       [](const MatrixCase& c) { return cr4_bit_accepted_without_cpuid(c, Cr4::Pcide); }});
  list.push_back(
      {"qemu-reserved-control-bit-vmexit-loop", qemu,
       "SDM 2.5 / MOV CR4, MOV CR3: setting a reserved CR4 bit, or a CR3 bit at or above "
       "MAXPHYADDR in IA-32e mode, raises #GP(0)",
       "QEMU 7.2 TCG's helper_write_crN answers these writes with cpu_vmexit(SVM_EXIT_ERR), an "
       "SVM #VMEXIT, though no SVM guest runs: the 'host' state it reloads is the state it just "
       "saved, so the vCPU re-executes the MOV forever and the watchdog reports a hang",
       "pagelab modes --backend qemu --from long64 --step 'CR4 bit 15'", [](const MatrixCase& c) {
         return (c.step.what == Write::Cr4 || c.step.what == Write::Cr3) && refused_by_model(c) &&
                stopped_with(c.observed, "hang");
       }});
  list.push_back(
      {"qemu-cr0-nw-without-cd-accepted", qemu,
       "SDM vol. 2 MOV CR0: setting CR0.NW with CR0.CD=0 raises #GP(0)",
       "QEMU 7.2 TCG's cpu_x86_update_cr0 checks no CR0 combination: NW is set with CD=0",
       "pagelab modes --backend qemu --from protected --step 'CR0.NW 0->1'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && (c.step.value & Cr0::Nw) &&
                !(c.step.value & Cr0::Cd) && refused_by_model(c) && accepted(c.observed) &&
                (c.observed.after.cr0 & Cr0::Nw) && !(c.observed.after.cr0 & Cr0::Cd);
       }});
  list.push_back(
      {"qemu-cr0-pg-without-pe-accepted", qemu,
       "SDM vol. 2 MOV CR0: setting CR0.PG with CR0.PE=0 raises #GP(0) (so PE cannot be cleared "
       "while paging)",
       "QEMU 7.2 TCG's cpu_x86_update_cr0 takes the write: PE is cleared with PG=1, and the "
       "probe goes on in its old code segment in a state no x86 CPU can be in",
       "pagelab modes --backend qemu --from paging32 --step 'CR0.PE 1->0'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && (c.step.value & Cr0::Pg) &&
                !(c.step.value & Cr0::Pe) && refused_by_model(c) && accepted(c.observed) &&
                (c.observed.after.cr0 & Cr0::Pg) && !(c.observed.after.cr0 & Cr0::Pe);
       },
       true});
  list.push_back(
      {"qemu-cr0-pg-in-real-mode-triple-fault", qemu,
       "SDM vol. 2 MOV CR0: setting CR0.PG with CR0.PE=0 raises #GP(0)",
       "QEMU 7.2 TCG's cpu_x86_update_cr0 takes PG with PE=0 here too (see "
       "qemu-cr0-pg-without-pe-accepted), and its MMU translates whenever CR0.PG=1: from real "
       "mode with CR3=0 the page directory is the real-mode IVT, whose entries (the even "
       "offsets of the probe's exception stubs) are not present, so the next fetch raises #PF, "
       "its delivery through the IVT faults again and the guest triple-faults",
       "pagelab modes --backend qemu --from real --step 'CR0.PG 0->1'", [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && !(c.before.cr0 & Cr0::Pe) &&
                (c.step.value & Cr0::Pg) && !(c.step.value & Cr0::Pe) && refused_by_model(c) &&
                stopped_with(c.observed, "triple fault");
       }});
  list.push_back(
      {"qemu-far-jump-l1-d1-in-ia32e-accepted", qemu,
       "SDM vol. 2 JMP / 3.4.5: in IA-32e mode a code segment with L=1 and D=1 is reserved; a far "
       "jump to it raises #GP(selector)",
       "QEMU 7.2 TCG's far JMP does not check the L/D combination: it loads CS, and with "
       "EFER.LMA=1 and L=1 runs the target as 64-bit code (the probe's landing pad tells 32- "
       "from 64-bit decoding apart and reports from its 64-bit dispatcher, with CS.L=1 CS.D=1)",
       "pagelab modes --backend qemu --from long64 --step 'far jump L=1 D=1'",
       [](const MatrixCase& c) {
         const bool l = c.step.value & paging::FarJumpOperand::L;
         const bool d = c.step.value & paging::FarJumpOperand::D;
         return c.step.what == Write::FarJumpCs && l && d && in_ia32e(c.before) &&
                refused_by_model(c) && accepted(c.observed) && c.observed.after.cs_l &&
                c.observed.after.cs_d;
       }});
  list.push_back(
      {"qemu-cr0-upper-bits-ignored", qemu,
       "SDM 2.5 / MOV CR0: CR0 bits 63:32 are reserved; a 64-bit MOV setting them raises #GP(0)",
       "QEMU 7.2 TCG's cpu_x86_update_cr0 takes a uint32_t: the upper half is dropped without a "
       "fault and CR0 keeps its old value",
       "pagelab modes --backend qemu --from long64 --step 'CR0 bit 32'", [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && (c.step.value & ~c.before.cr0 & kUpperHalf) != 0 &&
                refused_by_model(c) && accepted(c.observed) && c.observed.after == c.before;
       }});
  list.push_back(
      {"qemu-cr0-pg-lme-without-pae-ignored", qemu,
       "SDM 4.1.2 / 9.8.5: setting CR0.PG with EFER.LME=1 and CR4.PAE=0 raises #GP(0)",
       "QEMU 7.2 TCG's cpu_x86_update_cr0 returns without doing anything (its comment: \"XXX: "
       "generate an exception\"): no fault, and the whole CR0 write is lost",
       "pagelab modes --backend qemu --routes-only", [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && (c.step.value & Cr0::Pg) &&
                !(c.before.cr0 & Cr0::Pg) && (c.before.efer & Efer::Lme) &&
                !(c.before.cr4 & Cr4::Pae) && refused_by_model(c) && accepted(c.observed) &&
                c.observed.after == c.before;
       }});
  list.push_back(
      {"qemu-cr0-pg-clear-in-64bit-mode-accepted", qemu,
       "SDM vol. 2 MOV CR0 / 9.8.5.4: clearing CR0.PG in 64-bit mode raises #GP(0); IA-32e mode "
       "is left from compatibility mode",
       "QEMU 7.2 TCG's cpu_x86_update_cr0 clears PG and EFER.LMA from 64-bit mode and goes on "
       "running the 64-bit code segment outside IA-32e mode, i.e. as 16-bit code: the probe "
       "runs astray, the state after is whatever the misdecoded code reported, and the matrix "
       "replaces the Lab",
       "pagelab modes --backend qemu --from long64 --step 'CR0.PG 1->0'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && (c.before.cr0 & Cr0::Pg) &&
                !(c.step.value & Cr0::Pg) && in_ia32e(c.before) && c.before.cs_l &&
                refused_by_model(c) && c.observed.executed &&
                (!c.observed.stopped.empty() || !c.observed.faulted);
       },
       true});
  list.push_back(
      {"qemu-efer-reserved-bits-ignored", qemu,
       "SDM WRMSR / vol. 4 table 2-2: writing a reserved IA32_EFER bit raises #GP(0)",
       "QEMU 7.2 TCG's WRMSR to IA32_EFER keeps only the bits its CPUID offers (SCE, LME, NXE, "
       "FFXSR, SVME) and drops the rest without a fault",
       "pagelab modes --backend qemu --from protected --step 'EFER bit 1'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Efer && refused_by_model(c) && accepted(c.observed) &&
                c.observed.after == c.before;
       }});
  list.push_back(
      {"qemu-efer-lme-change-while-paging-accepted", qemu,
       "SDM 4.1.2 / 9.8.5: EFER.LME cannot change while CR0.PG=1; WRMSR raises #GP(0)",
       "QEMU 7.2 TCG's WRMSR to IA32_EFER checks nothing: LME changes with paging on and "
       "EFER.LMA stays as it was, a state no x86 CPU can be in",
       "pagelab modes --backend qemu --from paging32 --step 'EFER.LME 0->1'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Efer && ((c.step.value ^ c.before.efer) & Efer::Lme) &&
                (c.before.cr0 & Cr0::Pg) && refused_by_model(c) && accepted(c.observed) &&
                ((c.observed.after.efer ^ c.step.value) & Efer::Lme) == 0;
       }});
  list.push_back(
      {"qemu-cr4-pae-clear-in-ia32e-accepted", qemu,
       "SDM 4.1.2 / MOV CR4: clearing CR4.PAE while IA-32e mode is active raises #GP(0)",
       "QEMU 7.2 TCG's MOV CR4 has no such check: PAE is cleared with EFER.LMA=1, QEMU then walks "
       "the IA-32e tables as 32-bit paging structures, the probe's code is no longer mapped and "
       "the guest triple-faults",
       "pagelab modes --backend qemu --from long64 --step 'CR4.PAE 1->0'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr4 && (c.before.cr4 & Cr4::Pae) &&
                !(c.step.value & Cr4::Pae) && in_ia32e(c.before) && refused_by_model(c) &&
                (stopped_with(c.observed, "triple fault") ||
                 (accepted(c.observed) && !(c.observed.after.cr4 & Cr4::Pae)));
       },
       true});
  list.push_back(
      {"qemu-cr4-la57-change-in-compat-mode-accepted", qemu,
       "SDM 4.1.2 / MOV CR4: CR4.LA57 cannot change while IA-32e mode is active (EFER.LMA=1); "
       "#GP(0)",
       "QEMU 7.2 TCG's helper_write_crN refuses an LA57 change only in 64-bit mode (HF_CS64), "
       "not in compatibility mode: the write takes effect and the current tables are walked "
       "with the other number of levels (4 -> 5 kept the probe mapped; 5 -> 4 unmapped it and "
       "the guest triple-faulted)",
       "pagelab modes --backend qemu --from compat4 --step 'CR4.LA57 0->1'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr4 && ((c.step.value ^ c.before.cr4) & Cr4::La57) &&
                in_ia32e(c.before) && !c.before.cs_l && refused_by_model(c) &&
                (stopped_with(c.observed, "triple fault") ||
                 (accepted(c.observed) &&
                  ((c.observed.after.cr4 ^ c.before.cr4) & Cr4::La57) != 0));
       },
       true});
}

// KVM running on QEMU TCG's emulated SVM (scripts/nested-kvm.sh: kvm_amd, Linux 6.1,
// inside QEMU 7.2 TCG -cpu max). What `pagelab modes --backend kvm` found there on
// 2026-12-05 beyond the architecture; none of it is seen on hardware SVM.
void add_tcg_under_kvm(std::vector<Deviation>& list) {
  const std::string nested = "tcg-under-kvm";
  list.push_back(
      {"tcg-under-kvm-upper-control-bits-ignored", nested,
       "SDM 2.5 / MOV CR: CR0 bits 63:32 and the undefined CR4 bits are reserved; a 64-bit MOV "
       "setting them raises #GP(0)",
       "QEMU's emulated SVM offers no decode assists and no NRIP save, so KVM completes an "
       "intercepted MOV to CR0/CR4 in its own instruction emulator, which drops the upper half: "
       "no fault, and the register keeps its old value",
       "pagelab modes --backend kvm --from long64 --step 'bit 32'", [](const MatrixCase& c) {
         const std::uint64_t before = c.step.what == Write::Cr0   ? c.before.cr0
                                      : c.step.what == Write::Cr4 ? c.before.cr4
                                                                  : 0;
         return (c.step.what == Write::Cr0 || c.step.what == Write::Cr4) &&
                (c.step.value & ~before & kUpperHalf) != 0 && refused_by_model(c) &&
                accepted(c.observed) && c.observed.after == c.before;
       }});
  list.push_back(
      {"tcg-under-kvm-vmrun-refuses-l1-d1-code-segment", nested,
       "SDM vol. 2 JMP / 3.4.5: in IA-32e mode a code segment with L=1 and D=1 is reserved; a far "
       "jump to it raises #GP(selector)",
       "KVM emulates the far jump (it intercepts the #GP-free load) and resumes the guest with "
       "CS.L=1 CS.D=1; QEMU's emulated VMRUN then rejects that CS in its consistency checks, so "
       "KVM_RUN ends with KVM_EXIT_FAIL_ENTRY instead of the guest seeing #GP",
       "pagelab modes --backend kvm --from long64 --step 'far "
       "jump L=1 D=1'",
       [](const MatrixCase& c) {
         const bool l = c.step.value & paging::FarJumpOperand::L;
         const bool d = c.step.value & paging::FarJumpOperand::D;
         return c.step.what == Write::FarJumpCs && l && d && in_ia32e(c.before) &&
                refused_by_model(c) && stopped_with(c.observed, "entry failed");
       },
       true});
  list.push_back(
      {"tcg-under-kvm-pae-pdpte-accessed-bit-gp", nested,
       "SDM 4.4.1 and table 4-8: in PAE paging, MOV to CR0 changing CD, NW or PG and MOV to CR4 "
       "changing PAE, PGE, PSE or SMEP load the PDPTEs; #GP(0) only when a present PDPTE has a "
       "reserved bit set (bits 2:1 and 8:5 among them), and the processor never sets bit 5 "
       "there",
       "With npt=1 QEMU TCG walks the guest's tables and sets bit 5 (A) in the PAE PDPTEs it "
       "uses, as on 64-bit tables; KVM completes the intercepted MOV in its emulator (QEMU's "
       "SVM has no decode assists), reloads the PDPTEs from memory, finds that reserved bit "
       "and raises #GP(0); the register keeps its old value",
       "pagelab modes --backend kvm --from pae --step 'CR4.PGE 0->1'", [](const MatrixCase& c) {
         constexpr std::uint64_t cr0_triggers = Cr0::Cd | Cr0::Nw | Cr0::Pg;
         constexpr std::uint64_t cr4_triggers = Cr4::Pae | Cr4::Pge | Cr4::Pse | Cr4::Smep;
         const bool pae =
             (c.before.cr0 & Cr0::Pg) && (c.before.cr4 & Cr4::Pae) && !in_ia32e(c.before);
         const bool reloads =
             (c.step.what == Write::Cr0 && ((c.step.value ^ c.before.cr0) & cr0_triggers)) ||
             (c.step.what == Write::Cr4 && ((c.step.value ^ c.before.cr4) & cr4_triggers));
         return pae && reloads && c.expected.allowed && gp0(c.observed) &&
                c.observed.after == c.before;
       }});
  list.push_back(
      {"tcg-under-kvm-vmrun-refuses-cr3-high-bits", nested,
       "SDM 4.5 / MOV CR3: in IA-32e mode a CR3 bit at or above MAXPHYADDR (bit 63 without PCIDE "
       "is the no-flush bit's place) raises #GP(0)",
       "KVM lets the MOV CR3 through, and QEMU's emulated VMRUN rejects the CR3 in its "
       "consistency checks (bits 40 and 63 seen): KVM_RUN ends with KVM_EXIT_FAIL_ENTRY instead "
       "of the guest seeing #GP(0)",
       "pagelab modes --backend kvm --from long64 --step 'CR3'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr3 && in_ia32e(c.before) && refused_by_model(c) &&
                stopped_with(c.observed, "entry failed");
       },
       true});
}

std::vector<Deviation> make_list() {
  std::vector<Deviation> list;
  list.push_back(
      {"pvm-legacy-paging-refused", "kvm_pvm",
       "SDM 4.1.2: with EFER.LME=0, setting CR0.PG enables 32-bit paging (CR4.PAE=0) or PAE "
       "paging (CR4.PAE=1)",
       "PVM runs guests only in IA-32e paging: MOV CR0 setting PG with EFER.LME=0 raises #GP(0) "
       "and the state stays as it was (seen on kvm_pvm, 2026-11-21)",
       "pagelab modes --backend kvm --from protected --step 'CR0.PG 0->1'",
       [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && c.expected.allowed &&
                (c.expected.mode_after == paging::Mode::Paging32 ||
                 c.expected.mode_after == paging::Mode::Pae) &&
                !(c.before.cr0 & Cr0::Pg) && gp0(c.observed) && c.observed.after == c.before;
       }});
  list.push_back(
      {"pvm-cr4-pke-without-pku", "kvm_pvm",
       "SDM 2.5 / MOV CR4: CR4.PKE is reserved when CPUID.(EAX=07H,ECX=0):ECX.PKU=0; setting "
       "it raises #GP(0)",
       "PVM accepts CR4.PKE though the CPUID the guest executes lacks PKU (seen on kvm_pvm by "
       "pagelab modes, 2026-11-21)",
       "pagelab modes --backend kvm --from long64 --step 'CR4.PKE 0->1'",
       [](const MatrixCase& c) { return cr4_bit_accepted_without_cpuid(c, Cr4::Pke); }});
  list.push_back(
      {"kvm-cr4-smep-smap-without-cpuid", "kvm",
       "SDM 2.5 / MOV CR4: CR4.SMEP and CR4.SMAP are reserved when CPUID.(EAX=07H,ECX=0):EBX "
       "lacks SMEP (bit 7) / SMAP (bit 20); setting them raises #GP(0)",
       "The platform accepts CR4.SMEP/SMAP though the CPUID the guest executes lacks them (on "
       "kvm_pvm the table from KVM_GET_SUPPORTED_CPUID lacks them but the guest's CPUID has "
       "them, so there the writes agree)",
       "pagelab modes --backend kvm --from long64 --step 'CR4.SMEP 0->1'", [](const MatrixCase& c) {
         return cr4_bit_accepted_without_cpuid(c, Cr4::Smep) ||
                cr4_bit_accepted_without_cpuid(c, Cr4::Smap);
       }});
  list.push_back(
      {"pvm-upper-control-bits-ignored", "kvm_pvm",
       "SDM 2.5 / MOV CR: CR0 bits 63:32 and the undefined CR4 bits are reserved; a 64-bit MOV "
       "setting them raises #GP(0)",
       "In 64-bit mode the platform completes MOV to CR0/CR4 with a reserved bit above 31 set, "
       "without a fault, and drops the bit (the register keeps its old value) (seen on kvm_pvm "
       "by pagelab modes, 2026-11-21)",
       "pagelab modes --backend kvm --from long64 --step 'bit 32'", [](const MatrixCase& c) {
         const std::uint64_t before = c.step.what == Write::Cr0   ? c.before.cr0
                                      : c.step.what == Write::Cr4 ? c.before.cr4
                                                                  : 0;
         return (c.step.what == Write::Cr0 || c.step.what == Write::Cr4) &&
                (c.step.value & ~before & kUpperHalf) != 0 && !c.expected.allowed &&
                accepted(c.observed) && c.observed.after == c.before;
       }});
  add_qemu_tcg(list);
  add_tcg_under_kvm(list);
  return list;
}

}  // namespace

const std::vector<Deviation>& known_deviations() {
  static const std::vector<Deviation> list = make_list();
  return list;
}

bool deviation_applies(const Deviation& d, const MatrixCase& c) {
  if (c.platform.empty() || d.platform.empty()) return false;
  // Keys of how KVM runs rather than which KVM: detected on this machine.
  if (d.platform == "tcg-under-kvm" || d.platform == "kvm-shadow-mmu") {
    return c.platform.starts_with("kvm_") && has_platform_key(true, d.platform);
  }
  if (c.platform == d.platform) return true;
  // A family: "kvm" covers "kvm_pvm", "kvm_intel", ...
  return c.platform.size() > d.platform.size() && c.platform.starts_with(d.platform) &&
         c.platform[d.platform.size()] == '_';
}

std::optional<std::string> platform_wedge(const std::string& platform,
                                          const paging::ControlState& state) {
  if (!platform.starts_with("kvm_amd") || !has_platform_key(true, "tcg-under-kvm")) {
    return std::nullopt;
  }
  if (kvm_shadow_mmu(kvm::detect_flavour())) return std::nullopt;  // npt=0 survives it
  if ((state.efer & Efer::Lme) == 0 || (state.cr4 & Cr4::Pae) != 0 || (state.cr0 & Cr0::Pg) != 0) {
    return std::nullopt;
  }
  return "would wedge this platform: kvm_amd npt=1 under QEMU TCG hangs for good on a guest "
         "state with EFER.LME=1, CR4.PAE=0, CR0.PG=0 (QEMU's emulated #VMEXIT, do_vmexit() -> "
         "cpu_x86_update_cr0() returns early); it runs with npt=0";
}

const Deviation* find_deviation(const MatrixCase& c, const std::vector<Deviation>& list) {
  for (const auto& d : list) {
    if (deviation_applies(d, c) && d.matches && d.matches(c)) return &d;
  }
  return nullptr;
}

}  // namespace pagelab::lab

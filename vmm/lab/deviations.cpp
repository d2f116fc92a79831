#include "pagelab/lab/deviations.hpp"

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/segment_check.hpp"

namespace pagelab::lab {

namespace {

using paging::Cr0;
using paging::Cr4;
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

// The write sets `mask` in CR4 where it was clear, the model refuses it, and the CPU
// took it anyway (the bit is set afterwards).
bool cr4_bit_accepted_without_cpuid(const MatrixCase& c, std::uint64_t mask) {
  return c.step.what == Write::Cr4 && (c.step.value & mask) && !(c.before.cr4 & mask) &&
         !c.expected.allowed && accepted(c.observed) && (c.observed.after.cr4 & mask);
}

std::vector<Deviation> make_list() {
  std::vector<Deviation> list;
  list.push_back(
      {"pvm-legacy-paging-refused",
       "SDM 4.1.2: with EFER.LME=0, setting CR0.PG enables 32-bit paging (CR4.PAE=0) or PAE "
       "paging (CR4.PAE=1)",
       "PVM runs guests only in IA-32e paging: MOV CR0 setting PG with EFER.LME=0 raises #GP(0) "
       "and the state stays as it was (seen on kvm_pvm, 2026-11-21)",
       "pagelab modes --from protected --step 'CR0.PG 0->1'", [](const MatrixCase& c) {
         return c.step.what == Write::Cr0 && c.expected.allowed &&
                (c.expected.mode_after == paging::Mode::Paging32 ||
                 c.expected.mode_after == paging::Mode::Pae) &&
                !(c.before.cr0 & Cr0::Pg) && gp0(c.observed) && c.observed.after == c.before;
       }});
  list.push_back(
      {"pvm-cr4-pke-without-pku",
       "SDM 2.5 / MOV CR4: CR4.PKE is reserved when CPUID.(EAX=07H,ECX=0):ECX.PKU=0; setting "
       "it raises #GP(0)",
       "PVM accepts CR4.PKE though the CPUID the guest executes lacks PKU (seen on kvm_pvm by "
       "pagelab modes, 2026-11-21)",
       "pagelab modes --from long64 --step 'CR4.PKE 0->1'",
       [](const MatrixCase& c) { return cr4_bit_accepted_without_cpuid(c, Cr4::Pke); }});
  list.push_back(
      {"cr4-smep-smap-without-cpuid",
       "SDM 2.5 / MOV CR4: CR4.SMEP and CR4.SMAP are reserved when CPUID.(EAX=07H,ECX=0):EBX "
       "lacks SMEP (bit 7) / SMAP (bit 20); setting them raises #GP(0)",
       "The platform accepts CR4.SMEP/SMAP though the CPUID the guest executes lacks them (on "
       "kvm_pvm the table from KVM_GET_SUPPORTED_CPUID lacks them but the guest's CPUID has "
       "them, so there the writes agree)",
       "pagelab modes --from long64 --step 'CR4.SMEP 0->1'", [](const MatrixCase& c) {
         return cr4_bit_accepted_without_cpuid(c, Cr4::Smep) ||
                cr4_bit_accepted_without_cpuid(c, Cr4::Smap);
       }});
  list.push_back(
      {"pvm-upper-control-bits-ignored",
       "SDM 2.5 / MOV CR: CR0 bits 63:32 and the undefined CR4 bits are reserved; a 64-bit MOV "
       "setting them raises #GP(0)",
       "In 64-bit mode the platform completes MOV to CR0/CR4 with a reserved bit above 31 set, "
       "without a fault, and drops the bit (the register keeps its old value) (seen on kvm_pvm "
       "by pagelab modes, 2026-11-21)",
       "pagelab modes --from long64 --step 'bit 32'", [](const MatrixCase& c) {
         const std::uint64_t before = c.step.what == Write::Cr0   ? c.before.cr0
                                      : c.step.what == Write::Cr4 ? c.before.cr4
                                                                  : 0;
         return (c.step.what == Write::Cr0 || c.step.what == Write::Cr4) &&
                (c.step.value & ~before & kUpperHalf) != 0 && !c.expected.allowed &&
                accepted(c.observed) && c.observed.after == c.before;
       }});
  return list;
}

}  // namespace

const std::vector<Deviation>& known_deviations() {
  static const std::vector<Deviation> list = make_list();
  return list;
}

const Deviation* find_deviation(const MatrixCase& c, const std::vector<Deviation>& list) {
  for (const auto& d : list) {
    if (d.matches && d.matches(c)) return &d;
  }
  return nullptr;
}

}  // namespace pagelab::lab

#include "pagelab/lab/judge/access_deviations.hpp"

#include <variant>

#include "pagelab/kvm/flavour.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab {

namespace {

constexpr std::uint32_t PageFaultVector = 14;

// The architecture's #PF is a reserved-bit fault, and the CPU reported the same fault
// with the P bit clear (everything else equal).
bool reserved_bit_fault_without_p(const AccessCase& c) {
  using paging::PfError;
  const auto& ob = c.observed;
  if (ob.status != ProbeStatus::Fault || ob.vector != PageFaultVector) return false;
  for (const auto& o : c.allowed) {
    const auto* pf = std::get_if<paging::PageFault>(&o);
    if (pf == nullptr || (pf->error_code & PfError::Rsvd) == 0) continue;
    if (ob.error_code == (pf->error_code & ~PfError::P) && ob.cr2 == pf->cr2.value()) return true;
  }
  return false;
}

}  // namespace

std::string platform_tag(const Lab& lab) {
  if (lab.backend_name() != "kvm") return "tcg";
  const auto flavour = kvm::detect_flavour().name;
  if (flavour == "kvm_pvm") return "pvm";
  if (flavour == "kvm_intel" || flavour == "kvm_amd") return flavour;
  return "kvm";
}

const std::vector<AccessDeviation>& known_access_deviations() {
  static const std::vector<AccessDeviation> list = {
      {"pvm-host-pte-write-invisible",
       "SDM Vol. 3A §4.10.4.1: after INVLPG (or MOV CR3) the next access walks the paging "
       "structures in memory, whoever wrote them",
       "PVM (shadow paging) keeps using the shadow of an entry the host rewrote in guest "
       "memory; only a guest write to the entry, a CR0.WP toggle or re-adding the memory slot "
       "makes the change visible",
       "pagelab run examples/foreign_writer.pgl --backend kvm",
       [](const AccessCase& c) { return c.platform == "pvm" && c.matches_before_foreign_writes; }},
      {"tcg-reserved-bit-error-code-without-p",
       "SDM Vol. 3A §4.7: a reserved bit set in a paging-structure entry is a protection "
       "violation, reported with both RSVD and P set in the #PF error code (P=0 only when an "
       "entry is not present)",
       "QEMU 7.2 TCG reports reserved-bit page faults with P clear: error code 0x8 for 0x9 (read), "
       "0xe for 0xf (user write), at the PTE and the PDE, for address bits above MAXPHYADDR (40 "
       "and 51 seen) and for bit 63 with EFER.NXE=0 (`pagelab info --backend qemu` probes it); "
       "kvm-unit-tests' access test reports the same under TCG (\"error code 8 "
       "expected 9\")",
       "pagelab run examples/reserved_bit51.pgl --backend qemu",
       [](const AccessCase& c) { return c.platform == "tcg" && reserved_bit_fault_without_p(c); }},
  };
  return list;
}

const AccessDeviation* find_access_deviation(const AccessCase& c,
                                             const std::vector<AccessDeviation>& list) {
  for (const auto& d : list) {
    if (d.matches(c)) return &d;
  }
  return nullptr;
}

}  // namespace pagelab::lab

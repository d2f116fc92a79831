#include "pagelab/lab/judge/access_deviations.hpp"

#include <algorithm>
#include <variant>

#include "pagelab/lab/platform/host_machine.hpp"

#include "pagelab/kvm/flavour.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab {

namespace {

constexpr std::uint32_t PageFaultVector = 14;

// The CPU answered from a translation a #PF since should have invalidated (SDM
// §4.10.4.1): what the judge says such a kept TLB entry gives.
bool answered_after_fault_dropped_it(const AccessCase& c) {
  return c.matches_dropped_by_fault && c.matches_dropped_by_fault();
}

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

// Observed what a walk with one control bit flipped back gives, the bit being `bit` of
// the register `reg` picks, now clear.
bool as_if_set(const AccessCase& c, std::uint64_t paging::CpuState::*reg, std::uint64_t bit) {
  if ((c.state.*reg & bit) != 0 || !c.matches_under) return false;
  auto old = c.state;
  old.*reg |= bit;
  return c.matches_under(old);
}

// Observed what a walk with SMAP off gives: a supervisor data access to a user page
// that succeeded with CR0.WP=0, CR4.SMAP=1 and RFLAGS.AC=0.
bool smap_skipped_with_wp_clear(const AccessCase& c) {
  using paging::Cr0;
  using paging::Cr4;
  if ((c.state.cr0 & Cr0::Wp) != 0 || (c.state.cr4 & Cr4::Smap) == 0) return false;
  if (c.access.privilege != paging::Privilege::Supervisor ||
      c.access.type == paging::AccessType::Fetch || c.observed.status != ProbeStatus::Ok ||
      !c.matches_under) {
    return false;
  }
  auto off = c.state;
  off.cr4 &= ~Cr4::Smap;
  return c.matches_under(off);
}

// Observed what a walk under Intel's rules gives, on a CPU that says it is AMD.
bool as_if_intel(const AccessCase& c) {
  if (!c.state.features.amd || !c.matches_under) return false;
  auto intel = c.state;
  intel.features.amd = false;
  return c.matches_under(intel);
}

}  // namespace

std::vector<std::string> platform_keys(const Lab& lab) {
  return platform_keys(lab.backend_name() == "kvm");
}

const std::vector<AccessDeviation>& known_access_deviations() {
  static const std::vector<AccessDeviation> list = {
      {"shadow-mmu-host-pte-write-invisible", "kvm-shadow-mmu",
       "SDM Vol. 3A §4.10.4.1: after INVLPG (or MOV CR3) the next access walks the paging "
       "structures in memory, whoever wrote them",
       "KVM's shadow MMU (PVM; kvm_amd npt=0; kvm_intel ept=0) keeps using its shadow of an "
       "entry the host rewrote in guest memory: it learns of page-table changes by trapping "
       "the guest's own writes, and INVLPG re-reads only unsynced shadow pages. Only a guest "
       "write to the entry, a CR0.WP toggle or re-adding the memory slot makes the change "
       "visible. A limit of shadow paging rather than a bug: a VMM that writes its guest's "
       "page tables must tell KVM",
       "pagelab run examples/foreign_writer.pgl --backend kvm",
       [](const AccessCase& c) { return c.matches_before_foreign_writes; }},
      {"shadow-mmu-xd-kept-after-nxe-clear", "kvm-shadow-mmu",
       "SDM Vol. 3A §4.7 and table 4-19: with EFER.NXE=0, bit 63 of a paging-structure entry is "
       "reserved (#PF with RSVD); §4.10.4.1: after INVLPG the next access walks the entries in "
       "memory",
       "KVM's shadow MMU keeps the shadow entry it built while EFER.NXE was 1, so bit 63 still "
       "reads as XD and the access succeeds: its shadow pages carry efer_nx=1 whatever the "
       "guest's EFER (mmu.c, kvm_init_shadow_mmu(): root_role.efer_nx = true), and INVLPG "
       "leaves synced shadow pages alone. Seen on kvm_amd npt=0 (Linux 6.1) inside QEMU TCG",
       "pagelab run examples/nx_fetch.pgl --backend kvm",
       [](const AccessCase& c) {
         return as_if_set(c, &paging::CpuState::efer, paging::Efer::Nxe);
       }},
      {"shadow-mmu-pf-keeps-tlb-entry", "kvm-shadow-mmu",
       "SDM Vol. 3A §4.10.4.1: a page fault invalidates the TLB entries for the faulting "
       "linear address's page, so the next access to the page walks the paging structures in "
       "memory",
       "KVM's shadow MMU keeps the shadow entry of the faulting address when the #PF it "
       "injects has P=0: kvm_inject_emulated_page_fault() invalidates the address only for a "
       "fault with P=1 and without RSVD (x86.c, Linux 6.1), so after a not-present #PF a "
       "translation built before the entry changed still answers. Seen on kvm_amd npt=0 "
       "(Linux 6.1) inside QEMU TCG",
       "pagelab run examples/fault_drops_tlb_entry.pgl --backend kvm",
       [](const AccessCase& c) { return answered_after_fault_dropped_it(c); }, true},
      {"shadow-mmu-smap-skipped-after-wp0-write", "kvm-shadow-mmu",
       "SDM Vol. 3A §4.6.1: with CR4.SMAP=1, a supervisor-mode data access to a user-mode "
       "address with RFLAGS.AC=0 is not allowed, whatever CR0.WP; the check applies to every "
       "access, through a cached translation too",
       "KVM's shadow MMU lets a supervisor write with CR0.WP=0 through a read-only user page by "
       "making its shadow entry a writable supervisor page (mmu.rst, 'cr0.wp=0'); when that "
       "write had RFLAGS.AC=1 (SMAP allows it), later supervisor accesses with AC=0 go through "
       "the supervisor shadow entry and SMAP never fires. Found by pagelab fuzz on kvm_amd "
       "npt=0 (Linux 6.1) inside QEMU TCG",
       "pagelab run examples/smap_wp0.pgl --backend kvm",
       [](const AccessCase& c) { return smap_skipped_with_wp_clear(c); }},
      {"shadow-mmu-4m-page-kept-after-pse-clear", "kvm-shadow-mmu",
       "SDM Vol. 3A §4.3 and table 4-4: with CR4.PSE=0 the PS bit of a 32-bit PDE is ignored and "
       "the PDE references a page table; §4.10.4.1: after INVLPG the next access walks the "
       "entries in memory",
       "KVM's shadow MMU keeps translating through the 4 MiB page it shadowed while CR4.PSE was "
       "1: CR4.PSE is not part of a shadow page's role (only of the MMU's extended role), so "
       "the shadow page directory is reused after the change, and INVLPG leaves synced shadow "
       "pages alone. Seen on kvm_amd npt=0 (Linux 6.1) inside QEMU TCG",
       "pagelab run examples/paging32_pse_4m.pgl --backend kvm",
       [](const AccessCase& c) {
         return c.state.mode() == paging::PagingMode::Bits32 &&
                as_if_set(c, &paging::CpuState::cr4, paging::Cr4::Pse);
       }},
      {"tcg-reserved-bit-error-code-without-p", "tcg",
       "SDM Vol. 3A §4.7: a reserved bit set in a paging-structure entry is a protection "
       "violation, reported with both RSVD and P set in the #PF error code (P=0 only when an "
       "entry is not present)",
       "QEMU 7.2 TCG reports reserved-bit page faults with P clear: error code 0x8 for 0x9 (read), "
       "0xe for 0xf (user write), at the PTE and the PDE, for address bits above MAXPHYADDR (40 "
       "and 51 seen) and for bit 63 with EFER.NXE=0 (`pagelab info --backend qemu` probes it); "
       "kvm-unit-tests' access test reports the same under TCG (\"error code 8 "
       "expected 9\")",
       "pagelab run examples/reserved_bit51.pgl --backend qemu",
       [](const AccessCase& c) { return reserved_bit_fault_without_p(c); }},
      {"tcg-pf-keeps-tlb-entry", "tcg",
       "SDM Vol. 3A §4.10.4.1: a page fault invalidates the TLB entries for the faulting "
       "linear address's page and the paging-structure-cache entries that would be used for "
       "it, so the next access to the page walks the paging structures in memory",
       "QEMU 7.2 TCG keeps a translation cached for one kind of access (its TLB has one set "
       "of entries per privilege level) when an access of another kind to the same page "
       "faults: a supervisor read after a user access to the page took a #PF still uses the "
       "translation cached before, though the entry was made not present (or read-only, "
       "reserved) in between. Found by pagelab fuzz",
       "pagelab run examples/fault_drops_tlb_entry.pgl --backend qemu",
       [](const AccessCase& c) { return answered_after_fault_dropped_it(c); }, true},
      {"tcg-amd-top-bit8-ignored", "tcg",
       "AMD APM Vol. 2 §5.3.3 (PML4E and PML5E formats): bits 8:7 of a PML4E or PML5E must be "
       "zero; a walk through one with bit 8 set raises #PF with RSVD (Intel's SDM ignores the "
       "bit; the CPU's CPUID vendor decides)",
       "QEMU 7.2 TCG reports AuthenticAMD under -cpu max but ignores bit 8 of the PML4E (and "
       "PML5E), as Intel does: the access succeeds, or faults further down the walk. kvm_amd's "
       "shadow MMU reserves it (mmu.c, nonleaf_bit8_rsvd). Found by pagelab fuzz on kvm_amd "
       "npt=0",
       "pagelab run examples/amd_pml4e_bit8.pgl --backend qemu",
       [](const AccessCase& c) { return as_if_intel(c); }},
  };
  return list;
}

bool keeps_tlb_entries_across_faults(const std::vector<std::string>& platform) {
  const auto& list = known_access_deviations();
  return std::any_of(list.begin(), list.end(), [&](const AccessDeviation& d) {
    return d.keeps_tlb_entries_across_faults &&
           std::find(platform.begin(), platform.end(), d.platform) != platform.end();
  });
}

bool applies_to(const std::vector<std::string>& platform, const AccessDeviation& d) {
  return std::find(platform.begin(), platform.end(), d.platform) != platform.end();
}

const AccessDeviation* find_access_deviation(const AccessCase& c,
                                             const std::vector<AccessDeviation>& list) {
  for (const auto& d : list) {
    if (applies_to(c.platform, d) && d.matches(c)) return &d;
  }
  return nullptr;
}

}  // namespace pagelab::lab

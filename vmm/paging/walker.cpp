#include "pagelab/paging/walker.hpp"

#include <fmt/core.h>

#include <array>
#include <stdexcept>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_format.hpp"

namespace pagelab::paging {

namespace {

constexpr unsigned Bits32Width = 32;

bool canonical(std::uint64_t address, unsigned width) {
  // Bits 63:width-1 must all equal bit width-1.
  const std::uint64_t upper = address & bits(width - 1, 63);
  return upper == 0 || upper == bits(width - 1, 63);
}

// The error-code bits that describe the access itself (SDM §4.7).
std::uint32_t access_error_bits(const CpuState& s, const Access& a, PagingMode mode) {
  std::uint32_t ec = 0;
  if (a.type == AccessType::Write) ec |= PfError::W;
  if (a.privilege == Privilege::User && !a.implicit) ec |= PfError::U;
  // I/D is reported only when fetches can fault for reasons other than U/S:
  // SMEP, or XD under PAE/4-level/5-level paging with EFER.NXE.
  const bool nx_active = mode != PagingMode::Bits32 && (s.efer & Efer::Nxe) != 0;
  if (a.type == AccessType::Fetch && (nx_active || (s.cr4 & Cr4::Smep) != 0)) ec |= PfError::I;
  return ec;
}

std::string step_meaning(const EntryDecoding& d) {
  std::string flags = flag_summary(d);
  return flags.empty() ? d.meaning : "[" + flags + "] " + d.meaning;
}

}  // namespace

std::optional<GeneralProtection> load_pdptes(const PhysicalMemory& memory, CpuState& state) {
  const GuestPhys base(state.cr3 & bits(5, 31));
  std::array<std::uint64_t, PaePdpte::Count> loaded{};
  CpuState pae = state;  // decode as PAE even if CR0.PG is not yet set
  pae.cr0 |= Cr0::Pg;
  pae.cr4 |= Cr4::Pae;
  pae.efer &= ~Efer::Lma;
  for (unsigned i = 0; i < PaePdpte::Count; ++i) {
    loaded[i] = memory.read64(base + i * sizeof(std::uint64_t));
    const EntryDecoding d = decode_entry(pae, 3, loaded[i]);
    if (d.present && !d.violations.empty()) {
      return GeneralProtection{
          0, fmt::format("MOV CR3: PDPTE{} = {:#018x} has reserved bits set ({})", i, loaded[i],
                         d.violations.front().reason)};
    }
  }
  state.pdptes = loaded;
  return std::nullopt;
}

Walk walk(const PhysicalMemory& memory, const CpuState& state, const Access& access) {
  Walk w;
  const PagingMode mode = state.mode();
  const std::uint64_t va = access.address.value();

  if (mode == PagingMode::None || mode == PagingMode::Bits32 || mode == PagingMode::Pae) {
    if (va >= bit(Bits32Width)) {
      throw std::invalid_argument(fmt::format(
          "linear address {:#x} is wider than 32 bits; {} paging translates 32-bit addresses", va,
          to_string(mode)));
    }
  } else if (!canonical(va, linear_width(mode))) {
    w.outcome =
        GeneralProtection{0, fmt::format("{:#x} is not canonical: bits 63:{} must all equal bit {}",
                                         va, linear_width(mode) - 1, linear_width(mode) - 1)};
    w.fault_reason = std::get<GeneralProtection>(w.outcome).reason;
    return w;
  }

  if (mode == PagingMode::None) {
    Translation t;
    t.physical = GuestPhys(va);
    t.page_base = Linear(va & ~bits(0, 11));
    t.frame = GuestPhys(va & ~bits(0, 11));
    w.outcome = t;
    return w;
  }

  const std::uint32_t access_bits = access_error_bits(state, access, mode);
  auto fault = [&](std::uint32_t extra, std::string reason, std::vector<AdUpdate> may) {
    w.outcome = PageFault{access_bits | extra, access.address, std::move(may)};
    w.fault_reason = std::move(reason);
  };

  const bool nxe = mode != PagingMode::Bits32 && (state.efer & Efer::Nxe) != 0;
  bool writable = true, user = true, executable = true;
  std::vector<AdUpdate> accessed;  // entries used so far, each gets A
  GuestPhys table = state.root();
  EntryDecoding leaf;
  for (unsigned level = top_level(mode); level >= 1; --level) {
    const LevelBits lb = level_bits(mode, level);
    const auto index = static_cast<unsigned>((va >> lb.lo) & (bit(lb.bits) - 1));
    const bool pdpte_register = mode == PagingMode::Pae && level == 3;
    const GuestPhys entry_address = table + std::uint64_t{index} * entry_bytes(mode);
    std::uint64_t value = 0;
    if (pdpte_register) {
      value = state.pdptes[index];
    } else if (mode == PagingMode::Bits32) {
      value = memory.read32(entry_address);
    } else {
      value = memory.read64(entry_address);
    }
    const EntryDecoding d = decode_entry(state, level, value);
    w.steps.push_back({level, d.intel_name, d.linux_name, index, entry_address, value,
                       step_meaning(d), d.leaf && d.present && d.violations.empty()});
    if (!d.present) {
      fault(0, fmt::format("{}[{}] is not present", d.intel_name, index), accessed);
      return w;
    }
    if (!d.violations.empty()) {
      fault(PfError::P | PfError::Rsvd,
            fmt::format("{}[{}] has reserved bits set: {}", d.intel_name, index,
                        d.violations.front().reason),
            accessed);
      return w;
    }
    if (!pdpte_register) {
      // PAE PDPTEs have no R/W, U/S, XD or A.
      writable = writable && (value & Pte::Writable) != 0;
      user = user && (value & Pte::User) != 0;
      executable = executable && !(nxe && (value & Pte::NoExecute) != 0);
      accessed.emplace_back(entry_address, Pte::Accessed);
    }
    if (d.leaf) {
      leaf = d;
      break;
    }
    table = d.address;
  }

  // Permission checks on the accumulated rights (SDM §4.6.1).
  const bool supervisor = access.privilege == Privilege::Supervisor || access.implicit;
  const bool wp = (state.cr0 & Cr0::Wp) != 0;
  const bool smap_blocks = (state.cr4 & Cr4::Smap) != 0 && user && supervisor &&
                           (access.implicit || (state.rflags & Rflags::Ac) == 0);
  std::vector<AdUpdate> upper(accessed.begin(), accessed.end() - 1);
  std::string denied;
  switch (access.type) {
    case AccessType::Fetch:
      if (!executable) {
        denied = "fetch from a page with XD=1 at some level (EFER.NXE=1)";
      } else if (!supervisor && !user) {
        denied = "user fetch from a supervisor page (U/S=0 at some level)";
      } else if (supervisor && user && (state.cr4 & Cr4::Smep) != 0) {
        denied = "SMEP: supervisor fetch from a user page";
      }
      break;
    case AccessType::Read:
      if (!supervisor && !user) {
        denied = "user read from a supervisor page (U/S=0 at some level)";
      } else if (smap_blocks) {
        denied = access.implicit ? "SMAP: implicit supervisor read from a user page"
                                 : "SMAP: supervisor read from a user page with RFLAGS.AC=0";
      }
      break;
    case AccessType::Write:
      if (!supervisor && !user) {
        denied = "user write to a supervisor page (U/S=0 at some level)";
      } else if (!supervisor && !writable) {
        denied = "user write to a read-only page (R/W=0 at some level)";
      } else if (smap_blocks) {
        denied = access.implicit ? "SMAP: implicit supervisor write to a user page"
                                 : "SMAP: supervisor write to a user page with RFLAGS.AC=0";
      } else if (supervisor && wp && !writable) {
        denied = "supervisor write to a read-only page with CR0.WP=1";
      }
      break;
  }
  if (!denied.empty()) {
    fault(PfError::P, denied, upper);
    return w;
  }

  // Protection keys: 4/5-level paging, CR4.PKE, user pages, data accesses only.
  // Checked after the paging rights, so PK is set only when they allowed the access.
  const bool pk_active = (mode == PagingMode::Level4 || mode == PagingMode::Level5) &&
                         (state.cr4 & Cr4::Pke) != 0 && user && access.type != AccessType::Fetch;
  if (pk_active) {
    const unsigned key = leaf.protection_key;
    const bool ad = (state.pkru & Pkru::access_disable(key)) != 0;
    const bool wd = (state.pkru & Pkru::write_disable(key)) != 0;
    std::string pk_denied;
    if (ad) {
      pk_denied = fmt::format("PKRU.AD{}=1 forbids data access to key {}", key, key);
    } else if (access.type == AccessType::Write && wd && (!supervisor || wp)) {
      pk_denied = fmt::format("PKRU.WD{}=1 forbids writes to key {}{}", key, key,
                              supervisor ? " (supervisor, CR0.WP=1)" : "");
    }
    if (!pk_denied.empty()) {
      fault(PfError::P | PfError::Pk, pk_denied, upper);
      return w;
    }
  }

  Translation t;
  const std::uint64_t page_mask = page_bytes(leaf.page_size) - 1;
  t.page_size = leaf.page_size;
  t.frame = leaf.address;
  t.physical = leaf.address + (va & page_mask);
  t.page_base = Linear(va & ~page_mask);
  t.writable = writable;
  t.user = user;
  t.executable = executable;
  t.global = (leaf.value & Pte::Global) != 0 && (state.cr4 & Cr4::Pge) != 0;
  t.protection_key = leaf.protection_key;
  t.leaf_entry_address = w.steps.back().entry_address;
  t.leaf_entry = leaf.value;
  t.ad_updates = accessed;
  if (access.type == AccessType::Write) t.ad_updates.back().second |= Pte::Dirty;
  w.outcome = t;
  return w;
}

std::vector<Outcome> allowed_outcomes(const PhysicalMemory& memory, const CpuState& state,
                                      const Access& access) {
  return {walk(memory, state, access).outcome};
}

std::string describe_error_code(std::uint32_t error_code) {
  std::string out;
  auto add = [&](std::uint32_t mask, const char* set, const char* clear) {
    const char* name = (error_code & mask) != 0 ? set : clear;
    if (*name != '\0') out += (out.empty() ? "" : " ") + std::string(name);
  };
  add(PfError::P, "P", "not-present");
  add(PfError::W, "W", "R");
  add(PfError::U, "U", "S");
  add(PfError::Rsvd, "RSVD", "");
  add(PfError::I, "I", "");
  add(PfError::Pk, "PK", "");
  return out;
}

std::string describe(const Outcome& outcome) {
  if (const auto* t = std::get_if<Translation>(&outcome)) {
    return fmt::format("physical {:#x} ({} page{}{}{})", t->physical.value(),
                       to_string(t->page_size), t->writable ? ", writable" : ", read-only",
                       t->user ? ", user" : ", supervisor", t->executable ? "" : ", XD");
  }
  if (const auto* pf = std::get_if<PageFault>(&outcome)) {
    return fmt::format("#PF error code {:#x} ({}) CR2={:#x}", pf->error_code,
                       describe_error_code(pf->error_code), pf->cr2.value());
  }
  const auto& gp = std::get<GeneralProtection>(outcome);
  return fmt::format("#GP({:#x}): {}", gp.error_code, gp.reason);
}

}  // namespace pagelab::paging

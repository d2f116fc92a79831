#include <fmt/core.h>

#include <string_view>
#include <utility>

#include "pagelab/paging/transition.hpp"

namespace pagelab::paging {

namespace {

// A far jump needs a selector for the #GP(selector) error code; the probe's GDT puts
// its code segments at low indices, so any GDT selector at RPL 0 serves.
constexpr std::uint16_t kFarJumpSelector = 0x08;
// PCID 1: a non-zero PCID (or, with PCIDE=0, set low CR3 bits) for the CR3 probe.
constexpr std::uint64_t kPcidProbe = 1;

struct NamedMask {
  std::string_view name;
  std::uint64_t mask;
};

constexpr NamedMask kCr0Bits[] = {
    {"PE", Cr0::Pe}, {"MP", Cr0::Mp}, {"EM", Cr0::Em}, {"TS", Cr0::Ts}, {"NE", Cr0::Ne},
    {"WP", Cr0::Wp}, {"AM", Cr0::Am}, {"NW", Cr0::Nw}, {"CD", Cr0::Cd}, {"PG", Cr0::Pg},
};

// The CR4 bits that touch paging or are feature-gated; the always-present legacy bits
// (VME, PVI, TSD, DE, MCE, PCE, OSFXSR, OSXMMEXCPT) change nothing this model tracks.
constexpr NamedMask kCr4Bits[] = {
    {"PSE", Cr4::Pse},   {"PAE", Cr4::Pae},           {"PGE", Cr4::Pge},     {"UMIP", Cr4::Umip},
    {"LA57", Cr4::La57}, {"FSGSBASE", Cr4::Fsgsbase}, {"PCIDE", Cr4::Pcide}, {"SMEP", Cr4::Smep},
    {"SMAP", Cr4::Smap}, {"PKE", Cr4::Pke},
};

constexpr NamedMask kEferBits[] = {
    {"SCE", Efer::Sce}, {"LME", Efer::Lme}, {"NXE", Efer::Nxe}, {"LMA", Efer::Lma}};

std::string toggle_label(std::string_view reg, std::string_view name, bool was_set) {
  return fmt::format("{}.{} {}", reg, name, was_set ? "1->0" : "0->1");
}

}  // namespace

std::vector<Step> all_single_steps(const ControlState& from, const TransitionFeatures& features) {
  std::vector<Step> steps;
  const bool in64 = is_64bit(mode_of(from));
  const bool lma = from.efer & Efer::Lma;

  for (const auto& b : kCr0Bits) {
    steps.push_back(
        {Write::Cr0, from.cr0 ^ b.mask, toggle_label("CR0", b.name, from.cr0 & b.mask)});
  }
  const std::uint64_t pe_pg = Cr0::Pe | Cr0::Pg;
  if ((from.cr0 & pe_pg) == 0) {
    steps.push_back({Write::Cr0, from.cr0 | pe_pg, "CR0.PE+PG 0->1 together"});
  } else if ((from.cr0 & pe_pg) == pe_pg) {
    steps.push_back({Write::Cr0, from.cr0 & ~pe_pg, "CR0.PE+PG 1->0 together"});
  }
  // Bits 63:32 can only be expressed by a 64-bit MOV.
  if (in64) steps.push_back({Write::Cr0, from.cr0 | bit(32), "CR0 bit 32 (reserved)"});

  for (const auto& b : kCr4Bits) {
    steps.push_back(
        {Write::Cr4, from.cr4 ^ b.mask, toggle_label("CR4", b.name, from.cr4 & b.mask)});
  }
  steps.push_back({Write::Cr4, from.cr4 | Cr4More::ReservedProbe, "CR4 bit 15 (reserved)"});
  if (in64) steps.push_back({Write::Cr4, from.cr4 | bit(63), "CR4 bit 63 (reserved)"});

  steps.push_back({Write::Cr3, from.cr3, "CR3 reload (same value)"});
  steps.push_back(
      {Write::Cr3, (from.cr3 & ~Cr3::PcidMask) | kPcidProbe, "CR3 with PCID/low bits = 1"});
  if (lma && features.maxphyaddr < 64) {
    steps.push_back({Write::Cr3, from.cr3 | bit(features.maxphyaddr),
                     fmt::format("CR3 bit {} (MAXPHYADDR, reserved)", features.maxphyaddr)});
  }
  if (in64) steps.push_back({Write::Cr3, from.cr3 | Cr3::NoFlush, "CR3 bit 63 (PCID no-flush)"});

  for (const auto& b : kEferBits) {
    std::string label = toggle_label("EFER", b.name, from.efer & b.mask);
    if (b.mask == Efer::Lma) label += " (read-only)";
    steps.push_back({Write::Efer, from.efer ^ b.mask, std::move(label)});
  }
  steps.push_back({Write::Efer, from.efer | EferMore::ReservedProbe, "EFER bit 1 (reserved)"});

  for (const bool l : {false, true}) {
    for (const bool d : {false, true}) {
      steps.push_back({Write::FarJumpCs, FarJumpOperand::make(l, d, kFarJumpSelector),
                       fmt::format("far jump L={} D={}", l ? 1 : 0, d ? 1 : 0)});
    }
  }
  return steps;
}

}  // namespace pagelab::paging

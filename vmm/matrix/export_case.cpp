// A matrix case as a .pgl scenario (`pagelab run --help` has the language): the same
// tables, control bits and access, so that `pagelab run` replays it alone.
#include <fmt/format.h>

#include "pagelab/matrix/case_layout.hpp"
#include "pagelab/matrix/matrix_run.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::matrix {

namespace {

std::string_view scenario_mode(paging::PagingMode m) {
  switch (m) {
    case paging::PagingMode::Level5:
      return "5level";
    case paging::PagingMode::Pae:
      return "pae";
    case paging::PagingMode::Bits32:
      return "32bit";
    default:
      return "4level";
  }
}

std::string_view scenario_size(paging::PageSize s) {
  switch (s) {
    case paging::PageSize::Size2M:
      return "2m";
    case paging::PageSize::Size4M:
      return "4m";
    case paging::PageSize::Size1G:
      return "1g";
    default:
      return "4k";
  }
}

// "+p -w +u ..." for every flag the mode's dimensions own at this level: the scenario's
// own tables start with other bits (non-leaf entries P|W|U), so each one is said.
std::string entry_flags(const MatrixMode& mode, unsigned level, std::uint16_t flags,
                        unsigned maxphyaddr) {
  const bool wide = mode.paging != paging::PagingMode::Bits32;
  const bool long_mode =
      mode.paging == paging::PagingMode::Level4 || mode.paging == paging::PagingMode::Level5;
  const bool pdpte = mode.paging == paging::PagingMode::Pae && level == 3;
  const bool leaf = level == mode.leaf_level;
  std::string out;
  auto say = [&](bool on, std::string_view name) {
    out += fmt::format(" {}{}", on ? '+' : '-', name);
  };
  say((flags & FlagP) != 0, "p");
  if (!pdpte) {
    say((flags & FlagRw) != 0, "w");
    say((flags & FlagUs) != 0, "u");
    say((flags & FlagA) != 0, "a");
    if (leaf) say((flags & FlagD) != 0, "d");
    if (wide) say((flags & FlagNx) != 0, "nx");
  }
  if (long_mode && leaf) out += fmt::format(" pk={}", (flags & FlagPk) != 0 ? 1 : 0);
  if (wide) {
    say((flags & FlagR51) != 0, "bit51");
    if (maxphyaddr < 51) say((flags & FlagRmax) != 0, fmt::format("bit{}", maxphyaddr));
  }
  if (long_mode && level >= 4) say((flags & FlagRps) != 0, "ps");
  if (leaf && mode.leaf_size != paging::PageSize::Size4K) {
    say((flags & FlagRlow) != 0, mode.paging == paging::PagingMode::Bits32 ? "bit21" : "bit13");
  }
  return out;
}

}  // namespace

std::string export_case(const FlagSpace& space, const Setup& s, std::uint64_t number,
                        unsigned maxphyaddr, const std::string& observed) {
  const auto& mode = space.mode();
  const auto layout = layout_of(mode);
  std::string out;
  out += fmt::format("# pagelab matrix case {} of {}\n", number, mode.name);
  out += fmt::format("# {}\n", space.name(s));
  if (!observed.empty()) out += fmt::format("# observed by the matrix: {}\n", observed);
  out += "# Replay: pagelab run THIS_FILE (any disagreement with the judge fails it)\n";
  out += fmt::format("mode {}\n", scenario_mode(mode.paging));
  // The scenario starts with CR0.WP and (where NX exists) EFER.NXE set.
  out += fmt::format("cr0 {}wp\n", (s.control & ControlWp) != 0 ? '+' : '-');
  std::string cr4;
  if ((s.control & ControlSmep) != 0) cr4 += " +smep";
  if ((s.control & ControlSmap) != 0) cr4 += " +smap";
  if ((s.control & ControlPke) != 0) cr4 += " +pke";
  if (!cr4.empty()) out += fmt::format("cr4{}\n", cr4);
  if (space.has_control(ControlNxe)) {
    out += fmt::format("efer {}nxe\n", (s.control & ControlNxe) != 0 ? '+' : '-');
  }
  if ((s.control & ControlPke) != 0) {
    const unsigned pkru = ((s.pkru & PkruAd) != 0 ? paging::Pkru::access_disable(1) : 0u) |
                          ((s.pkru & PkruWd) != 0 ? paging::Pkru::write_disable(1) : 0u);
    out += fmt::format("pkru {:#x}\n", pkru);
  }
  out += fmt::format("map {:#x} -> {:#x} {} {} w u\n", layout.va.value(), layout.frame.value(),
                     scenario_size(mode.leaf_size), scenario_size(mode.leaf_size));
  for (const auto l : space.levels()) {
    out += fmt::format("set entry {:#x} {}{}\n", layout.va.value(), paging::intel_level_name(l),
                       entry_flags(mode, l, s.level[l], maxphyaddr));
  }
  const bool fetch = (s.access & AccessFetch) != 0;
  const auto at = layout.va + (fetch ? layout.fetch_offset : layout.data_offset);
  const char* verb = (s.access & AccessWrite) != 0 ? "write" : fetch ? "fetch" : "read";
  const auto access =
      fmt::format("{} {:#x}{}{}{}\n", verb, at.value(), (s.access & AccessUser) != 0 ? " user" : "",
                  (s.access & AccessAc) != 0 ? " ac" : "",
                  (s.access & AccessWrite) != 0 ? fmt::format(" value {:#x}", number) : "");
  out += access;
  if ((s.access & AccessTwice) != 0) out += access;
  return out;
}

}  // namespace pagelab::matrix

// `pagelab decode pte VALUE --mode M --level L`: every named bit of a paging-structure
// entry, its address field, page size and reserved-bit violations.
#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "output.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_format.hpp"
#include "pagelab/paging/tables_file.hpp"

namespace pagelab::cli {

namespace {

using namespace pagelab::paging;

struct DecodePteOptions {
  std::string value;
  std::string mode;
  std::string level;
  std::string maxphyaddr = "48";
  bool json = false;
  bool no_nxe = false;
  bool no_1g = false;
  bool pke = false;
};

unsigned parse_level(const std::string& text, PagingMode mode) {
  std::string n = text;
  std::transform(n.begin(), n.end(), n.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  unsigned level = 0;
  if (n == "pt")
    level = 1;
  else if (n == "pd")
    level = 2;
  else if (n == "pdpt")
    level = 3;
  else if (n == "pml4")
    level = 4;
  else if (n == "pml5")
    level = 5;
  else if (n == "pte" || n == "pmd" || n == "pud" || n == "p4d" || n == "pgd") {
    for (const auto& l : linux_levels(mode)) {
      std::string name(l.name);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (name != n) continue;
      if (l.folded) {
        throw UsageError(fmt::format("--level {}: the Linux {} level is folded in {} paging", text,
                                     l.name, to_string(mode)));
      }
      level = l.intel_level;
    }
  } else {
    const std::uint64_t v = parse_u64(text, "--level");
    level = v <= 5 ? static_cast<unsigned>(v) : 0;
  }
  if (!has_level(mode, level)) {
    throw UsageError(
        fmt::format("--level {}: {} paging has levels 1..{} (1=PT, 2=PD, 3=PDPT, 4=PML4, 5=PML5)",
                    text, to_string(mode), top_level(mode)));
  }
  return level;
}

void run_decode_pte(const DecodePteOptions& o) {
  const std::uint64_t value = parse_u64(o.value, "VALUE");
  const auto mode = parse_mode_name(o.mode);
  if (!mode || *mode == PagingMode::None) {
    throw UsageError(fmt::format("--mode: unknown mode '{}' (use 32, pae, 4 or 5)", o.mode));
  }
  const unsigned level = parse_level(o.level, *mode);
  const std::uint64_t maxphyaddr = parse_u64(o.maxphyaddr, "--maxphyaddr");
  if (maxphyaddr < 32 || maxphyaddr > 52) {
    throw UsageError("--maxphyaddr must be between 32 and 52");
  }
  CpuFeatures features;
  features.maxphyaddr = static_cast<unsigned>(maxphyaddr);
  features.page1g = !o.no_1g;
  features.nx = !o.no_nxe;
  features.la57 = *mode == PagingMode::Level5;
  CpuState state = make_cpu_state(*mode, GuestPhys(0), features);
  if (o.pke) state.cr4 |= Cr4::Pke;
  if (*mode == PagingMode::Bits32 && value > UINT32_MAX) {
    throw UsageError(fmt::format("VALUE {:#x} does not fit a 32-bit entry", value));
  }
  const EntryDecoding d = decode_entry(state, level, value);

  if (o.json) {
    nlohmann::json flags = nlohmann::json::object();
    for (const auto& f : d.flags) flags[f.name] = f.set;
    nlohmann::json violations = nlohmann::json::array();
    for (const auto& v : d.violations) {
      violations.push_back({{"mask", v.mask}, {"reason", v.reason}});
    }
    nlohmann::json j = {{"value", value},
                        {"mode", to_string(*mode)},
                        {"level", level},
                        {"intel_name", d.intel_name},
                        {"linux_name", d.linux_name},
                        {"present", d.present},
                        {"leaf", d.leaf},
                        {"address", d.address.value()},
                        {"flags", flags},
                        {"reserved_violations", violations},
                        {"meaning", d.meaning}};
    if (d.leaf) j["page_size"] = to_string(d.page_size);
    if (o.pke && d.leaf) j["protection_key"] = d.protection_key;
    print_document("decode", j, {"value", "address", "mask"});
    return;
  }
  fmt::print("{:#x} as a {} ({} level {}, Linux {}) in {} paging\n", value, d.intel_name,
             intel_level_name(level), level, d.linux_name, to_string(*mode));
  for (const auto& f : d.flags) {
    fmt::print("  bit {:>2}  {:<4} {}\n", f.position, f.name, f.set ? 1 : 0);
  }
  fmt::print("  {}: {:#x}\n", d.leaf ? "page frame" : "next table", d.address.value());
  if (d.leaf) fmt::print("  page size: {}\n", to_string(d.page_size));
  if (o.pke && d.leaf) fmt::print("  protection key: {}\n", d.protection_key);
  if (d.violations.empty()) {
    fmt::print("  reserved bits: none set\n");
  } else {
    for (const auto& v : d.violations) {
      fmt::print("  RESERVED bits {:#x} set: {}{}\n", value & v.mask, v.reason,
                 d.present ? " -> #PF with RSVD" : " (ignored: not present)");
    }
  }
  fmt::print("  meaning: {}\n", d.meaning);
}

}  // namespace

void add_decode_pte(CLI::App& decode, Context& /*ctx*/) {
  auto opts = std::make_shared<DecodePteOptions>();
  CLI::App* cmd = decode.add_subcommand(
      "pte",
      "Decode a paging-structure entry: named bits, address, page size, reserved bits.\n"
      "Assumes CR4.PSE, EFER.NXE and 1 GiB pages unless told otherwise.");
  cmd->add_option("value", opts->value, "the entry (0x.. hex, 0b.., decimal)")->required();
  cmd->add_option("--mode", opts->mode, "paging mode: 32, pae, 4 or 5")->required();
  cmd->add_option("--level", opts->level,
                  "1..5 or pt/pd/pdpt/pml4/pml5 or Linux pte/pmd/pud/p4d/pgd")
      ->required();
  cmd->add_option("--maxphyaddr", opts->maxphyaddr, "physical-address width (default 48)");
  cmd->add_flag("--no-nxe", opts->no_nxe, "EFER.NXE=0: bit 63 is reserved");
  cmd->add_flag("--no-1g", opts->no_1g, "the CPU lacks 1 GiB pages: PS in a PDPTE is reserved");
  cmd->add_flag("--pke", opts->pke, "CR4.PKE=1: show the protection key of leaves");
  cmd->add_flag("--json", opts->json, "machine-readable output");
  cmd->callback([opts] { run_decode_pte(*opts); });
}

}  // namespace pagelab::cli

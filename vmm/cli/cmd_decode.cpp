// `pagelab decode`: explains raw architectural values — segment descriptors and
// selectors, CR0/CR4/EFER (and, through cmd_decode_pte.cpp, paging-structure entries).
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "commands.hpp"
#include "output.hpp"
#include "pagelab/paging/segment_descriptor.hpp"
#include "pagelab/paging/transition.hpp"
#include "pagelab/paging/transition_bits.hpp"
#include "segment_layouts.hpp"

namespace pagelab::cli {

namespace {

namespace pg = pagelab::paging;
using nlohmann::json;

// Selectors are 16 bits; each GDT/LDT entry they index is 8 bytes (SDM §3.4.2).
constexpr std::uint64_t kSelectorMax = 0xffff;
constexpr unsigned kDescriptorBytes = 8;

std::string human_size(std::uint64_t bytes) {
  constexpr std::uint64_t kKiB = 1024;
  const std::pair<std::uint64_t, const char*> units[] = {
      {kKiB * kKiB * kKiB, "GiB"}, {kKiB * kKiB, "MiB"}, {kKiB, "KiB"}};
  for (const auto& [unit, name] : units) {
    if (bytes >= unit && bytes % unit == 0) return fmt::format("{} {}", bytes / unit, name);
  }
  return fmt::format("{} bytes", bytes);
}

std::optional<std::uint64_t> parse_optional(const std::string& text, const std::string& what) {
  if (text.empty()) return std::nullopt;
  return parse_u64(text, what);
}

// ---- descriptor ----

struct DescriptorOptions {
  std::string value, high;
  bool long_mode = false;
  bool json = false;
};

std::string kind_of(const pg::Descriptor& d) {
  if (d.is_code()) return "code";
  if (d.is_data()) return "data";
  return "system";
}

std::string db_meaning(const pg::Descriptor& d) {
  if (d.is_code()) {
    if (d.l) return d.db ? "invalid with L=1 in IA-32e mode" : "must be 0 with L=1";
    return d.db ? "32-bit default operand/address size" : "16-bit default operand/address size";
  }
  if (d.is_data()) {
    return d.db ? "big: 32-bit stack pointer, expand-down upper bound 0xffffffff"
                : "16-bit stack pointer, expand-down upper bound 0xffff";
  }
  return "unused in system descriptors";
}

void run_decode_descriptor(const DescriptorOptions& o) {
  const std::uint64_t raw = parse_u64(o.value, "descriptor");
  const auto high = parse_optional(o.high, "--high");
  pg::Descriptor d = pg::decode_descriptor(raw, o.long_mode || high.has_value());
  if (high) {
    if (!d.is_16_bytes()) {
      throw UsageError(fmt::format(
          "--high: {:#x} is a {}, not a 16-byte IA-32e system descriptor (LDT, TSS, gate)", raw,
          d.type_name()));
    }
    try {
      d = pg::decode_descriptor16(raw, *high);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
  }
  const std::uint64_t size = d.effective_limit() + 1;
  if (o.json) {
    json j = {{"value", raw},
              {"kind", kind_of(d)},
              {"type", d.type},
              {"type_name", d.type_name()},
              {"s", d.s},
              {"dpl", d.dpl},
              {"present", d.present},
              {"avl", d.avl},
              {"l", d.l},
              {"db", d.db},
              {"g", d.g}};
    if (high) j["high"] = *high;
    if (d.is_gate()) {
      j["gate_selector"] = d.gate_selector;
      j["gate_offset"] = d.gate_offset;
      if (d.long_mode) {
        j["gate_ist"] = d.gate_ist;
      } else {
        j["gate_param_count"] = d.gate_param_count;
      }
    } else {
      j["base"] = d.base;
      j["limit"] = d.limit;
      j["effective_limit"] = d.effective_limit();
      j["size"] = human_size(size);
    }
    print_document("decode", j,
                   {"value", "high", "gate_offset", "base", "limit", "effective_limit"});
    return;
  }
  fmt::print("{:#018x}: {} descriptor: {}\n", raw, d.s ? "segment" : "system", d.type_name());
  if (d.is_gate()) {
    fmt::print("  target      {:#06x}:{:#x}\n", d.gate_selector, d.gate_offset);
    if (d.long_mode) {
      fmt::print("  IST         {}\n", d.gate_ist);
    } else {
      fmt::print("  params      {}\n", d.gate_param_count);
    }
  } else {
    fmt::print("  base        {:#x}\n", d.base);
    if (d.g) {
      fmt::print("  limit       {:#x} with 4 KiB granularity (G=1): effective limit {:#x}, {}\n",
                 d.limit, d.effective_limit(), human_size(size));
    } else {
      fmt::print("  limit       {:#x} in bytes (G=0): {}\n", d.limit, human_size(size));
    }
  }
  fmt::print("  type        {:#x} ({})\n", d.type, d.type_name());
  fmt::print("  S           {} ({})\n", d.s ? 1 : 0, d.s ? "code/data" : "system");
  fmt::print("  DPL         {}\n", d.dpl);
  fmt::print("  P           {} ({})\n", d.present ? 1 : 0, d.present ? "present" : "not present");
  if (!d.is_gate()) {
    fmt::print("  AVL         {}\n", d.avl ? 1 : 0);
    fmt::print("  L           {}{}\n", d.l ? 1 : 0,
               d.is_code() ? (d.l ? " (64-bit code in IA-32e mode)" : "") : "");
    fmt::print("  D/B         {} ({})\n", d.db ? 1 : 0, db_meaning(d));
    fmt::print("  G           {} ({})\n", d.g ? 1 : 0,
               d.g ? "limit in 4 KiB units" : "limit in bytes");
  }
  if (d.is_16_bytes() && !high) {
    fmt::print("  note        a 16-byte descriptor in IA-32e mode: pass --high for bits 63:32\n");
  }
}

// ---- selector ----

struct SelectorOptions {
  std::string value;
  bool json = false;
};

void run_decode_selector(const SelectorOptions& o) {
  const std::uint64_t raw = parse_u64(o.value, "selector");
  if (raw > kSelectorMax) {
    throw UsageError(fmt::format("selector: {:#x} does not fit in 16 bits", raw));
  }
  const pg::Selector s{static_cast<std::uint16_t>(raw)};
  const std::string table = s.ti() ? "LDT" : "GDT";
  if (o.json) {
    json j = {{"value", raw},
              {"index", s.index()},
              {"ti", s.ti() ? 1 : 0},
              {"table", table},
              {"rpl", s.rpl()},
              {"null", s.is_null()},
              {"byte_offset", s.index() * kDescriptorBytes},
              {"linux_names", linux_selector_names(s.raw)}};
    print_document("decode", j, {"value", "byte_offset"});
    return;
  }
  fmt::print("{:#06x}: index {}, TI {} ({}), RPL {}\n", raw, s.index(), s.ti() ? 1 : 0, table,
             s.rpl());
  fmt::print("  descriptor at byte {:#x} of the {}\n", s.index() * kDescriptorBytes, table);
  for (const auto& name : linux_selector_names(s.raw)) fmt::print("  Linux: {}\n", name);
  if (s.is_null()) {
    fmt::print("  the null selector: loading it into SS or CS raises #GP(0)\n");
  }
}

// ---- control registers ----

enum class Reg { Cr0, Cr4, Efer };

struct RegisterOptions {
  Reg reg = Reg::Cr0;
  std::string value, cr0, cr4, efer;
  bool json = false;
};

std::span<const pg::RegisterBitName> table_of(Reg r) {
  switch (r) {
    case Reg::Cr0:
      return pg::cr0_bit_names();
    case Reg::Cr4:
      return pg::cr4_bit_names();
    case Reg::Efer:
      return pg::efer_bit_names();
  }
  return {};
}

const char* name_of(Reg r) {
  switch (r) {
    case Reg::Cr0:
      return "CR0";
    case Reg::Cr4:
      return "CR4";
    case Reg::Efer:
      return "EFER";
  }
  return "?";
}

std::string reserved_consequence(Reg r, unsigned position) {
  if (r == Reg::Cr0 && position < 32) return "reserved: MOV to CR0 ignores it";
  return "reserved: writing 1 raises #GP(0)";
}

// What the known registers say about the mode. With all three known the model decides;
// otherwise say what this register alone implies.
std::string implied_mode(Reg r, std::uint64_t value, std::optional<std::uint64_t> cr0,
                         std::optional<std::uint64_t> cr4, std::optional<std::uint64_t> efer) {
  if (cr0 && cr4 && efer) {
    pg::ControlState s{*cr0, 0, *cr4, *efer, false, true};
    const pg::Mode m = pg::mode_of(s);
    if (m == pg::Mode::Inconsistent) {
      return fmt::format("inconsistent: {} (no CPU can be in this state)", pg::inconsistency(s));
    }
    if (pg::is_ia32e(m)) {
      return fmt::format(
          "IA-32e mode with {}-level paging (64-bit mode if CS.L=1, else "
          "compatibility mode)",
          (*cr4 & pg::Cr4::La57) ? 5 : 4);
    }
    return std::string(pg::mode_name(m));
  }
  switch (r) {
    case Reg::Cr0:
      if (!(value & pg::Cr0::Pe)) {
        return (value & pg::Cr0::Pg) ? "invalid: PG=1 needs PE=1 (MOV CR0 raises #GP(0))"
                                     : "real-address mode";
      }
      if (!(value & pg::Cr0::Pg)) return "protected mode without paging";
      return "paging enabled: 32-bit, PAE, 4- or 5-level by CR4.PAE, EFER.LME and CR4.LA57 "
             "(pass --cr4 and --efer)";
    case Reg::Cr4:
      if (!(value & pg::Cr4::Pae)) {
        return fmt::format(
            "with CR0.PG=1: 32-bit paging{}; EFER.LME=1 would make setting PG "
            "raise #GP",
            (value & pg::Cr4::Pse) ? " with 4 MiB pages" : "");
      }
      return fmt::format(
          "with CR0.PG=1: PAE paging if EFER.LME=0, {}-level paging if "
          "EFER.LME=1",
          (value & pg::Cr4::La57) ? 5 : 4);
    case Reg::Efer: {
      const bool lme = value & pg::Efer::Lme;
      const bool lma = value & pg::Efer::Lma;
      if (lma && !lme) return "inconsistent: LMA=1 with LME=0";
      if (lma) return "IA-32e mode active (CR0.PG=1, CR4.PAE=1)";
      if (lme) return "IA-32e mode enabled, activates when CR0.PG is set (needs CR4.PAE=1)";
      return "IA-32e mode off: legacy paging modes only";
    }
  }
  return {};
}

void run_decode_register(const RegisterOptions& o) {
  const char* reg = name_of(o.reg);
  const std::uint64_t value = parse_u64(o.value, reg);
  auto cr0 = parse_optional(o.cr0, "--cr0");
  auto cr4 = parse_optional(o.cr4, "--cr4");
  auto efer = parse_optional(o.efer, "--efer");
  (o.reg == Reg::Cr0 ? cr0 : o.reg == Reg::Cr4 ? cr4 : efer) = value;

  struct Row {
    unsigned position;
    std::string name, meaning;
    bool reserved;
  };
  std::vector<Row> rows;
  const auto table = table_of(o.reg);
  for (unsigned n = 0; n < 64; ++n) {
    if (!(value & pg::bit(n))) continue;
    Row row{n, fmt::format("bit{}", n), reserved_consequence(o.reg, n), true};
    for (const auto& b : table) {
      if (b.position == n) row = Row{n, std::string(b.name), std::string(b.meaning), false};
    }
    rows.push_back(row);
  }
  const std::string mode = implied_mode(o.reg, value, cr0, cr4, efer);

  if (o.json) {
    json bits = json::array();
    json reserved = json::array();
    for (const auto& r : rows) {
      bits.push_back({{"bit", r.position},
                      {"name", r.name},
                      {"meaning", r.meaning},
                      {"reserved", r.reserved}});
      if (r.reserved) reserved.push_back(r.position);
    }
    json j = {{"register", reg},
              {"value", value},
              {"bits", bits},
              {"reserved_bits_set", reserved},
              {"mode", mode}};
    print_document("decode", j, {"value"});
    return;
  }
  fmt::print("{} = {:#x}\n", reg, value);
  if (rows.empty()) fmt::print("  no bits set\n");
  for (const auto& r : rows) {
    fmt::print("  bit {:>2}  {:<10} {}{}\n", r.position, r.name, r.reserved ? "RESERVED, " : "",
               r.meaning);
  }
  fmt::print("  mode: {}\n", mode);
}

void add_register(CLI::App& decode, Reg reg, const std::string& name, const std::string& help) {
  auto o = std::make_shared<RegisterOptions>();
  o->reg = reg;
  CLI::App* cmd = decode.add_subcommand(name, help);
  cmd->add_option("value", o->value, "the register value (0x.. hex, 0b.., decimal)")->required();
  if (reg != Reg::Cr0) cmd->add_option("--cr0", o->cr0, "CR0, to name the mode exactly");
  if (reg != Reg::Cr4) cmd->add_option("--cr4", o->cr4, "CR4, to name the mode exactly");
  if (reg != Reg::Efer) cmd->add_option("--efer", o->efer, "EFER, to name the mode exactly");
  cmd->add_flag("--json", o->json, "machine-readable output");
  cmd->callback([o] { run_decode_register(*o); });
}

}  // namespace

void add_decode(CLI::App& app, Context& ctx) {
  CLI::App* decode = app.add_subcommand(
      "decode", "Decode raw values: descriptors, selectors, CR0/CR4/EFER, page-table entries");
  decode->require_subcommand(1);
  add_decode_pte(*decode, ctx);

  auto desc = std::make_shared<DescriptorOptions>();
  CLI::App* d =
      decode->add_subcommand("descriptor",
                             "Decode a GDT/LDT/IDT descriptor (8 bytes; 16-byte IA-32e system "
                             "descriptors with --high)");
  d->add_option("value", desc->value, "the (low) quadword")->required();
  d->add_option("--high", desc->high, "the high quadword of a 16-byte IA-32e descriptor");
  d->add_flag("--long-mode", desc->long_mode, "read system types as IA-32e types");
  d->add_flag("--json", desc->json, "machine-readable output");
  d->callback([desc] { run_decode_descriptor(*desc); });

  auto sel = std::make_shared<SelectorOptions>();
  CLI::App* s = decode->add_subcommand("selector", "Decode a segment selector (16 bits)");
  s->add_option("value", sel->value, "the selector")->required();
  s->add_flag("--json", sel->json, "machine-readable output");
  s->callback([sel] { run_decode_selector(*sel); });

  add_register(*decode, Reg::Cr0, "cr0", "Decode CR0: named bits, reserved bits, mode");
  add_register(*decode, Reg::Cr4, "cr4", "Decode CR4: named bits, reserved bits, mode");
  add_register(*decode, Reg::Efer, "efer", "Decode IA32_EFER: named bits, reserved bits, mode");
}

}  // namespace pagelab::cli

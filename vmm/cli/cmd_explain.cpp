// `pagelab explain VA`: the index breakdown of a linear address and the oracle's walk,
// level by level, over the built-in worked example or a page-table dump (--tables).
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <variant>

#include <iostream>

#include "commands.hpp"
#include "output.hpp"
#include "pagelab/lab/judge/scenario_model.hpp"
#include "pagelab/lab/report/json.hpp"
#include "pagelab/paging/seed_example.hpp"
#include "pagelab/paging/segment_check.hpp"
#include "pagelab/paging/segment_descriptor.hpp"
#include "pagelab/paging/tables_file.hpp"
#include "pagelab/paging/text_file.hpp"
#include "pagelab/paging/walker.hpp"
#include "segment_layouts.hpp"

namespace pagelab::cli {

namespace {

using namespace pagelab::paging;

std::string report_hex(std::uint64_t v) {
  return lab::report::hex(v);
}

struct ExplainOptions {
  std::vector<std::string> addresses;
  std::string mode;
  std::string tables;
  std::string features;
  std::string gdt = "probe";
  unsigned maxphyaddr = 0;
  bool json = false, write = false, fetch = false, user = false, implicit = false;
};

// The features the walk assumes: every paging feature (as `run --oracle-only`), or
// exactly the listed ones.
CpuFeatures features_of(const ExplainOptions& o) {
  CpuFeatures f = lab::scenario::full_features();
  if (!o.features.empty()) {
    f = CpuFeatures{};
    f.pse = f.pse36 = f.pae = f.pge = f.nx = false;
    std::stringstream in(o.features);
    std::string name;
    while (std::getline(in, name, ',')) {
      if (name == "1g") {
        f.page1g = true;
      } else if (name == "la57") {
        f.la57 = true;
      } else if (name == "pse") {
        f.pse = true;
      } else if (name == "pse36") {
        f.pse36 = true;
      } else if (name == "pae") {
        f.pae = true;
      } else if (name == "pge") {
        f.pge = true;
      } else if (name == "nx") {
        f.nx = true;
      } else if (name == "pcid") {
        f.pcid = true;
      } else if (name == "smep") {
        f.smep = true;
      } else if (name == "smap") {
        f.smap = true;
      } else if (name == "pku") {
        f.pku = true;
      } else if (name != "none") {
        throw UsageError(fmt::format(
            "--features: unknown feature '{}' (1g, la57, pse, pse36, pae, pge, nx, pcid, smep, "
            "smap, pku, or none)",
            printable(name)));
      }
    }
  }
  if (o.maxphyaddr != 0) f.maxphyaddr = o.maxphyaddr;
  return f;
}

std::string access_text(const Access& a) {
  const char* type = a.type == AccessType::Write   ? "write"
                     : a.type == AccessType::Fetch ? "fetch"
                                                   : "read";
  return fmt::format("{}, {}", type, a.privilege == Privilege::User ? "user" : "supervisor");
}

nlohmann::json outcome_json(const Outcome& outcome) {
  nlohmann::json j;
  if (const auto* t = std::get_if<Translation>(&outcome)) {
    j = {{"kind", "ok"},
         {"physical", t->physical.value()},
         {"page_size", to_string(t->page_size)},
         {"writable", t->writable},
         {"user", t->user},
         {"executable", t->executable},
         {"global", t->global}};
    nlohmann::json ad = nlohmann::json::array();
    for (const auto& [address, set] : t->ad_updates) {
      ad.push_back({{"entry_address", address.value()}, {"sets", set}});
    }
    j["ad_updates"] = ad;
  } else if (const auto* pf = std::get_if<PageFault>(&outcome)) {
    j = {{"kind", "page-fault"},
         {"vector", 14},
         {"error_code", pf->error_code},
         {"error_bits", describe_error_code(pf->error_code)},
         {"cr2", pf->cr2.value()}};
  } else {
    const auto& gp = std::get<GeneralProtection>(outcome);
    j = {{"kind", "general-protection"},
         {"vector", 13},
         {"error_code", gp.error_code},
         {"reason", gp.reason}};
  }
  return j;
}

// The page the walk ended on decides how many bits are offset (a 2 MiB page: 21).
PageSize page_size_of(const Walk& w) {
  if (const auto* t = std::get_if<Translation>(&w.outcome)) return t->page_size;
  return PageSize::Size4K;
}

void print_text(const Walk& w, const CpuState& state, const Access& access,
                const std::string& source) {
  const PagingMode mode = state.mode();
  const std::uint64_t va = access.address.value();
  fmt::print("{:#x} in {} paging ({}), tables: {}\n", va, to_string(mode), access_text(access),
             source);
  const Decomposition d = decompose(mode, access.address, page_size_of(w));
  fmt::print("index breakdown{}:\n", page_size_of(w) == PageSize::Size4K
                                         ? ""
                                         : fmt::format(" ({} page)", to_string(page_size_of(w))));
  for (const auto& p : d.parts) {
    fmt::print("  {:<5} (Linux {:<3})  bits {:>2}:{:<2}  index {:>4} ({:#x})\n", p.intel_name,
               p.linux_name, p.hi, p.lo, p.index, p.index);
  }
  fmt::print("  offset              bits {:>2}:0   {:#x}\n", d.offset_bits - 1, d.offset);
  fmt::print("Linux levels:");
  for (const auto& l : linux_levels(mode)) {
    if (l.folded) {
      fmt::print(" {} folded;", l.name);
    } else {
      fmt::print(" {} {} bits ({});", l.name, l.bits, intel_level_name(l.intel_level));
    }
  }
  fmt::print("\nwalk (CR3 = {:#x}):\n", state.cr3);
  const int digits = entry_bytes(mode) * 2;
  for (const auto& s : w.steps) {
    fmt::print("  {:<6} [{:>3}] @ {:#010x} = 0x{:0{}x}  {}\n", s.intel_name, s.index,
               s.entry_address.value(), s.value, digits, s.meaning);
  }
  fmt::print("outcome: {}\n", describe(w.outcome));
  if (std::holds_alternative<Translation>(w.outcome)) {
    const auto& t = std::get<Translation>(w.outcome);
    fmt::print("  {:#x} = frame {:#x} + offset {:#x}\n", t.physical.value(), t.frame.value(),
               t.physical.value() - t.frame.value());
  }
  if (!w.fault_reason.empty()) fmt::print("  because: {}\n", w.fault_reason);
}

nlohmann::json walk_json(const Walk& w, const CpuState& state, const Access& access,
                         const std::string& source) {
  const PagingMode mode = state.mode();
  const Decomposition d = decompose(mode, access.address, page_size_of(w));
  nlohmann::json j;
  j["address"] = access.address.value();
  j["mode"] = to_string(mode);
  j["tables"] = source;
  j["cr3"] = state.cr3;
  j["access"] = {{"type", access.type == AccessType::Write   ? "write"
                          : access.type == AccessType::Fetch ? "fetch"
                                                             : "read"},
                 {"privilege", access.privilege == Privilege::User ? "user" : "supervisor"}};
  nlohmann::json parts = nlohmann::json::array();
  for (const auto& p : d.parts) {
    parts.push_back({{"level", p.level},
                     {"intel", p.intel_name},
                     {"linux", p.linux_name},
                     {"hi", p.hi},
                     {"lo", p.lo},
                     {"index", p.index}});
  }
  j["breakdown"] = parts;
  j["offset"] = d.offset;
  j["offset_bits"] = d.offset_bits;
  nlohmann::json linux_json = nlohmann::json::array();
  for (const auto& l : linux_levels(mode)) {
    linux_json.push_back(
        {{"name", l.name}, {"bits", l.bits}, {"folded", l.folded}, {"intel_level", l.intel_level}});
  }
  j["linux_levels"] = linux_json;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : w.steps) {
    steps.push_back({{"level", s.level},
                     {"intel_name", s.intel_name},
                     {"linux_name", s.linux_name},
                     {"index", s.index},
                     {"entry_address", s.entry_address.value()},
                     {"value", s.value},
                     {"meaning", s.meaning},
                     {"leaf", s.leaf}});
  }
  j["steps"] = steps;
  j["outcome"] = outcome_json(w.outcome);
  if (!w.fault_reason.empty()) j["fault_reason"] = w.fault_reason;
  return j;
}

std::string read_file(const std::string& path) {
  try {
    return read_text_file(path);
  } catch (const TextFileError& e) {
    throw UsageError(fmt::format("--tables: {}:{}: {}", printable(path), e.line(), e.what()));
  }
}

// One address: "VA" or "SELECTOR:OFFSET" (a logical address, segmented first).
struct Target {
  std::uint64_t linear = 0;
  std::optional<std::uint16_t> selector;
  std::uint64_t offset = 0;
};

Target parse_target(const std::string& text) {
  Target t;
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    t.linear = parse_u64(text, "address");
    return t;
  }
  const auto sel = parse_u64(text.substr(0, colon), "selector");
  if (sel > 0xffff) throw UsageError(fmt::format("selector {:#x} does not fit in 16 bits", sel));
  t.selector = static_cast<std::uint16_t>(sel);
  t.offset = parse_u64(text.substr(colon + 1), "offset");
  return t;
}

// The segmentation step of SEL:OFFSET through the GDT, as CS (a fetch) or DS: the
// descriptor, the checks, and base + offset. Returns the linear address or nothing
// (the fault is printed / put in `j`).
std::optional<std::uint64_t> segment(const Target& t, const ExplainOptions& o, const Access& access,
                                     PagingMode mode, nlohmann::json& j, std::string& text) {
  const GdtLayout gdt = gdt_layout(o.gdt);
  const Selector sel{*t.selector};
  const bool long_mode = mode == PagingMode::Level4 || mode == PagingMode::Level5;
  // A code address (CS:EIP, as a `call` target) is a fetch through CS, at the CPL the
  // selector's RPL gives (loading CS makes CPL its RPL); a write goes through DS.
  const auto reg =
      access.type == AccessType::Write ? SegmentRegisterName::Ds : SegmentRegisterName::Cs;
  const unsigned cpl = reg == SegmentRegisterName::Cs        ? sel.rpl()
                       : access.privilege == Privilege::User ? 3
                                                             : 0;
  nlohmann::json sj = {{"selector", report_hex(sel.raw)},
                       {"index", sel.index()},
                       {"ti", sel.ti() ? 1 : 0},
                       {"rpl", sel.rpl()},
                       {"register", std::string(to_string(reg))},
                       {"gdt", gdt.name},
                       {"offset", report_hex(t.offset)}};
  const auto names = linux_selector_names(sel.raw);
  if (!names.empty()) sj["linux_names"] = names;
  text += fmt::format("segmentation: {} = {:#06x} (index {}, {}, RPL {}){}, GDT {}\n",
                      to_string(reg), sel.raw, sel.index(), sel.ti() ? "LDT" : "GDT", sel.rpl(),
                      names.empty() ? "" : " = " + names.front(), gdt.name);
  auto fail = [&](unsigned vector, std::uint32_t code, const std::string& reason) {
    sj["fault"] = {{"kind", "exception"},
                   {"vector", vector},
                   {"error_code", report_hex(code)},
                   {"reason", reason}};
    j["segmentation"] = sj;
    text += fmt::format("  -> {}({:#x}): {}\n",
                        vector == 13   ? "#GP"
                        : vector == 11 ? "#NP"
                                       : "#SS",
                        code, reason);
    return std::nullopt;
  };
  if (sel.ti()) return fail(13, sel.error_code(), "the selector points into the LDT (none here)");
  if (sel.index() >= gdt.entries.size()) {
    return fail(
        13, sel.error_code(),
        fmt::format("index {} is past the GDT's {} entries", sel.index(), gdt.entries.size()));
  }
  const Descriptor d = decode_descriptor(gdt.entries[sel.index()], long_mode);
  sj["descriptor"] = report_hex(gdt.entries[sel.index()]);
  text += fmt::format("  descriptor {:#018x}: base {:#x}, limit {:#x} ({}), DPL {}, {}{}\n",
                      gdt.entries[sel.index()], d.base, d.effective_limit(),
                      d.g ? "4 KiB units" : "bytes", d.dpl, d.type_name(),
                      d.present ? "" : ", NOT present");
  if (auto f = check_segment_load(sel, d, reg, cpl, long_mode, long_mode)) {
    return fail(f->vector, f->error_code, f->reason);
  }
  SegmentRegister sr{reg, sel, d};
  const auto kind = access.type == AccessType::Fetch   ? AccessKind::Execute
                    : access.type == AccessType::Write ? AccessKind::Write
                                                       : AccessKind::Read;
  const auto r = logical_to_linear(sr, t.offset, 1, kind, cpl,
                                   long_mode && d.l && reg == SegmentRegisterName::Cs,
                                   mode == PagingMode::Level5 ? 57 : 48);
  if (const auto* f = std::get_if<SegmentFault>(&r))
    return fail(f->vector, f->error_code, f->reason);
  const auto linear = std::get<Linear>(r).value();
  sj["base"] = report_hex(d.base);
  sj["limit"] = report_hex(d.effective_limit());
  sj["linear"] = report_hex(linear);
  j["segmentation"] = sj;
  text += fmt::format("  linear = base {:#x} + offset {:#x} = {:#x}{}\n", d.base, t.offset, linear,
                      long_mode && d.l ? " (64-bit mode: the base is 0, no limit check)" : "");
  return linear;
}

// Explains one address; returns its JSON (printed by the caller) or prints the text.
nlohmann::json explain_one(const std::string& argument, const ExplainOptions& o) {
  const Target target = parse_target(argument);
  std::optional<PagingMode> mode;
  if (!o.mode.empty()) {
    mode = parse_mode_name(o.mode);
    if (!mode || *mode == PagingMode::None) {
      throw UsageError(fmt::format("--mode: unknown mode '{}' (use 32, pae, 4 or 5)", o.mode));
    }
  }
  Access access{Linear(target.linear)};
  if (o.write) access.type = AccessType::Write;
  if (o.fetch) access.type = AccessType::Fetch;
  if (o.user) access.privilege = Privilege::User;
  access.implicit = o.implicit;
  const CpuFeatures features = features_of(o);

  try {
    nlohmann::json seg;
    std::string seg_text;
    std::optional<TablesFile> file;
    if (!o.tables.empty()) file = parse_tables_text(read_file(o.tables), o.tables);
    const PagingMode m = mode.value_or(file && file->mode ? *file->mode : PagingMode::Level4);
    if (target.selector) {
      if (access.type != AccessType::Write) {
        access.type = AccessType::Fetch;
        if (Selector{*target.selector}.rpl() == 3) access.privilege = Privilege::User;
      }
      const auto linear = segment(target, o, access, m, seg, seg_text);
      if (!o.json) fmt::print("{}", seg_text);
      if (!linear) {
        nlohmann::json j = seg;
        j["address"] = argument;
        j["mode"] = to_string(m);
        return j;
      }
      access.address = Linear(*linear);
    }
    if (!file && m != PagingMode::Level4 && m != PagingMode::Level5) {
      // No tables to walk: the split alone, which needs none.
      const Decomposition d = decompose(m, access.address);
      nlohmann::json j = seg;
      j["address"] = report_hex(access.address.value());
      j["mode"] = to_string(m);
      nlohmann::json parts = nlohmann::json::array();
      for (const auto& p : d.parts) {
        parts.push_back({{"level", p.level},
                         {"intel", p.intel_name},
                         {"linux", p.linux_name},
                         {"hi", p.hi},
                         {"lo", p.lo},
                         {"index", p.index}});
      }
      j["breakdown"] = parts;
      j["offset"] = report_hex(d.offset);
      j["offset_bits"] = d.offset_bits;
      if (!o.json) {
        fmt::print("{:#x} in {} paging (index split only; --tables FILE walks a dump)\n",
                   access.address.value(), to_string(m));
        for (const auto& p : d.parts) {
          fmt::print("  {:<5} (Linux {:<3})  bits {:>2}:{:<2}  index {:>4} ({:#x})\n", p.intel_name,
                     p.linux_name, p.hi, p.lo, p.index, p.index);
        }
        fmt::print(
            "  offset              bits {:>2}:0   {:#x} (4 KiB page; with CR4.PSE a 4 MiB "
            "page has bits {}:0)\n",
            d.offset_bits - 1, d.offset, m == PagingMode::Bits32 ? 21 : 20);
        fmt::print("Linux levels:");
        for (const auto& l : linux_levels(m)) {
          if (l.folded) {
            fmt::print(" {} folded;", l.name);
          } else {
            fmt::print(" {} {} bits ({});", l.name, l.bits, intel_level_name(l.intel_level));
          }
        }
        fmt::print("\n");
      }
      return j;
    }
    Walk w;
    CpuState state;
    std::string source;
    if (!file) {
      const SeedExample seed = make_seed_example(m);
      state = seed.state;
      state.features = features;
      if (m == PagingMode::Level5) state.features.la57 = true;
      source = "built-in worked example";
      w = walk(seed.memory, state, access);
    } else {
      state = state_for(*file, m, features);
      source = o.tables;
      w = walk(file->memory, state, access);
    }
    if (!o.json) {
      print_text(w, state, access, source);
      return {};
    }
    auto j = walk_json(w, state, access, source);
    if (!seg.is_null()) j.update(seg);
    return j;
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  } catch (const std::out_of_range& e) {
    throw UsageError(fmt::format("the walk left the given tables: {}", e.what()));
  }
}

void run_explain(const ExplainOptions& o) {
  std::vector<std::string> addresses = o.addresses;
  // No address, or "-": one per line on stdin, so a tool can drive one process.
  if (addresses.empty() || (addresses.size() == 1 && addresses[0] == "-")) {
    addresses.clear();
    std::string line;
    while (std::getline(std::cin, line)) {
      const auto start = line.find_first_not_of(" \t\r");
      if (start == std::string::npos || line[start] == '#') continue;
      const auto end = line.find_last_not_of(" \t\r");
      addresses.push_back(line.substr(start, end - start + 1));
    }
    if (addresses.empty()) throw UsageError("no address (give one, or one per line on stdin)");
  }
  // Every address is checked before any is explained: bad input prints nothing.
  for (const auto& a : addresses) (void)parse_target(a);
  const bool lines = addresses.size() > 1;
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    auto j = explain_one(addresses[i], o);
    if (o.json) {
      // Several addresses: JSON Lines, one whole document per address.
      auto doc = lab::report::document("explain");
      doc.update(j);
      hex_fields(doc, {"address", "cr3", "offset", "physical", "entry_address", "sets", "value",
                       "error_code", "cr2"});
      if (lines) {
        fmt::print("{}\n", doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        print_json(doc);
      }
    } else if (lines && i + 1 < addresses.size()) {
      fmt::print("\n");
    }
  }
}

}  // namespace

void add_explain(CLI::App& app, Context& /*ctx*/) {
  auto opts = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain",
      "Explain how a linear address is translated: index per level (Intel and Linux names,\n"
      "folded levels), the walk entry by entry, and the outcome (physical address or fault).\n"
      "Without --tables, uses the built-in worked example (0x803FE7F5CE -> 0xc5ce).\n"
      "SELECTOR:OFFSET (e.g. 0x23:0x08048368) is a logical address: CS:EIP of a fetch at the\n"
      "selector's RPL (with --write, DS), selector -> descriptor -> base + offset (limit and\n"
      "privilege checked), then paging. Several addresses: the\n"
      "reports one after another; with --json, one JSON document per line.\n"
      "--tables FILE format: '#' comments; 'mode 32|pae|4|5'; 'cr3 VALUE' (required);\n"
      "optional 'cr0|cr4|efer|rflags|pkru VALUE'; entries as 'PHYS_ADDRESS VALUE [32|64]'.");
  cmd->add_option("addresses", opts->addresses,
                  "linear addresses (0x.. hex, 0b.., decimal), or SELECTOR:OFFSET logical "
                  "addresses (segmented through --gdt first); none or '-': one per line on stdin");
  cmd->add_option("--mode", opts->mode,
                  "paging mode: 32, pae, 4 (default) or 5; 32 and pae without --tables show the "
                  "index split only");
  cmd->add_option("--features", opts->features,
                  "CPU features the walk assumes, exactly these: 1g,la57,pse,pse36,pae,pge,nx,"
                  "pcid,smep,smap,pku (or none); default: all of them, as run --oracle-only");
  cmd->add_option("--maxphyaddr", opts->maxphyaddr, "physical address width (default 48)")
      ->check(CLI::Range(32U, 52U));
  cmd->add_flag("--implicit", opts->implicit,
                "an implicit supervisor access (e.g. a descriptor-table read at CPL3)");
  cmd->add_option("--gdt", opts->gdt,
                  "for SELECTOR:OFFSET: probe (default: the probe's own GDT), linux32 (i386 "
                  "Linux 2.4 flat: 0x10/0x18/0x23/0x2b), linux64 (x86-64 Linux), or descriptor "
                  "values separated by commas (index 0 first)");
  cmd->add_option("--tables", opts->tables, "page-table dump to explain (format above)");
  cmd->add_flag("--json", opts->json, "machine-readable output");
  auto* write = cmd->add_flag("--write", opts->write, "explain a write access");
  auto* fetch = cmd->add_flag("--fetch", opts->fetch, "explain an instruction fetch");
  write->excludes(fetch);
  cmd->add_flag("--user", opts->user, "access from user mode (CPL 3)");
  auto* tables = cmd->get_option("--tables");
  cmd->callback([opts, tables] {
    // An empty name is a mistake (an unset variable), not a request for the built-in example.
    if (tables->count() > 0 && opts->tables.empty()) throw UsageError("--tables: empty file name");
    run_explain(*opts);
  });
}

}  // namespace pagelab::cli

// `pagelab explain VA`: the index breakdown of a linear address and the oracle's walk,
// level by level, over the built-in worked example or a page-table dump (--tables).
#include <fmt/core.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <variant>

#include "commands.hpp"
#include "output.hpp"
#include "pagelab/paging/seed_example.hpp"
#include "pagelab/paging/tables_file.hpp"
#include "pagelab/paging/text_file.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::cli {

namespace {

using namespace pagelab::paging;

struct ExplainOptions {
  std::string address;
  std::string mode;
  std::string tables;
  bool json = false, write = false, fetch = false, user = false;
};

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

void print_text(const Walk& w, const CpuState& state, const Access& access,
                const std::string& source) {
  const PagingMode mode = state.mode();
  const std::uint64_t va = access.address.value();
  fmt::print("{:#x} in {} paging ({}), tables: {}\n", va, to_string(mode), access_text(access),
             source);
  const Decomposition d = decompose(mode, access.address);
  fmt::print("index breakdown:\n");
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

void print_walk_json(const Walk& w, const CpuState& state, const Access& access,
                     const std::string& source) {
  const PagingMode mode = state.mode();
  const Decomposition d = decompose(mode, access.address);
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
  print_document("explain", j,
                 {"address", "cr3", "offset", "physical", "entry_address", "sets", "value",
                  "error_code", "cr2"});
}

std::string read_file(const std::string& path) {
  try {
    return read_text_file(path);
  } catch (const TextFileError& e) {
    throw UsageError(fmt::format("--tables: {}:{}: {}", printable(path), e.line(), e.what()));
  }
}

void run_explain(const ExplainOptions& o) {
  const std::uint64_t va = parse_u64(o.address, "address");
  std::optional<PagingMode> mode;
  if (!o.mode.empty()) {
    mode = parse_mode_name(o.mode);
    if (!mode || *mode == PagingMode::None) {
      throw UsageError(fmt::format("--mode: unknown mode '{}' (use 32, pae, 4 or 5)", o.mode));
    }
  }
  Access access{Linear(va)};
  if (o.write) access.type = AccessType::Write;
  if (o.fetch) access.type = AccessType::Fetch;
  if (o.user) access.privilege = Privilege::User;

  try {
    Walk w;
    CpuState state;
    std::string source;
    if (o.tables.empty()) {
      const PagingMode m = mode.value_or(PagingMode::Level4);
      if (m != PagingMode::Level4 && m != PagingMode::Level5) {
        throw UsageError(fmt::format(
            "the built-in example is 4-level and 5-level only; for --mode {} pass --tables FILE",
            o.mode));
      }
      const SeedExample seed = make_seed_example(m);
      state = seed.state;
      source = "built-in worked example";
      w = walk(seed.memory, state, access);
    } else {
      const TablesFile file = parse_tables_text(read_file(o.tables), o.tables);
      const PagingMode m = mode.value_or(file.mode.value_or(PagingMode::Level4));
      state = state_for(file, m);
      source = o.tables;
      w = walk(file.memory, state, access);
    }
    if (o.json) {
      print_walk_json(w, state, access, source);
    } else {
      print_text(w, state, access, source);
    }
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  } catch (const std::out_of_range& e) {
    throw UsageError(fmt::format("the walk left the given tables: {}", e.what()));
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
      "--tables FILE format: '#' comments; 'mode 32|pae|4|5'; 'cr3 VALUE' (required);\n"
      "optional 'cr0|cr4|efer|rflags|pkru VALUE'; entries as 'PHYS_ADDRESS VALUE [32|64]'.");
  cmd->add_option("address", opts->address, "linear address (0x.. hex, 0b.., decimal)")->required();
  cmd->add_option("--mode", opts->mode, "paging mode: 32, pae, 4 (default) or 5");
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

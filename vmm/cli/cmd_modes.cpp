// `pagelab modes`: the mode-transition regression suite. Every single control write
// from every reachable mode, and the named routes, on the CPU, against the model.
#include <fmt/core.h>

#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/mode_matrix.hpp"

namespace pagelab::cli {

namespace {

struct ModesArgs {
  bool json = false;
  bool quiet = false;
  bool no_routes = false;
  bool routes_only = false;
  std::string backend = "kvm";
  std::string from;
  std::string step;
  unsigned watchdog_ms = 2000;
};

std::string clip(const std::string& text, std::size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

void print_case(const lab::MatrixCase& c) {
  fmt::print("{:<10} {:<38} {:<16} {:<16} {:<9} {}\n", lab::short_name(c.from),
             clip(c.step.label, 38), c.expected_text(), c.observed_text(),
             lab::to_string(c.verdict), clip(c.expected.rule, 90));
  if (c.verdict == lab::CaseVerdict::Mismatch || c.verdict == lab::CaseVerdict::Deviation) {
    fmt::print("{:<10} !! {}\n", "", c.detail);
  } else if (c.verdict == lab::CaseVerdict::Skipped) {
    fmt::print("{:<10} -- {}\n", "", clip(c.detail, 140));
  }
}

void print_header() {
  fmt::print("{:<10} {:<38} {:<16} {:<16} {:<9} {}\n", "from", "transition", "expected", "observed",
             "verdict", "rule");
}

void print_text(const lab::MatrixResult& result, const std::string& flavour) {
  fmt::print("pagelab modes on {} (backend {})\n", flavour, result.backend);
  for (const auto& note : result.notes) fmt::print("note: {}\n", note);
  fmt::print("\n");
  if (!result.cases.empty()) {
    fmt::print("== single steps from each mode\n");
    print_header();
    for (const auto& c : result.cases) print_case(c);
    fmt::print("\n");
  }
  for (const auto& r : result.routes) {
    fmt::print("== route {}: {} [{}]\n", r.name, r.description, lab::to_string(r.overall()));
    print_header();
    for (const auto& c : r.steps) print_case(c);
    fmt::print("\n");
  }
  const auto n = result.counts();
  if (n.deviations) {
    fmt::print("Deviations:\n");
    for (const auto& [id, count] : n.by_deviation) {
      for (const auto& d : lab::known_deviations()) {
        if (d.id != id) continue;
        fmt::print("  {} ({} cases): {}\n    breaks: {}\n    reproduce: {}\n", id, count,
                   d.description, d.rule, d.reproducer);
      }
    }
  }
  if (n.skipped) {
    fmt::print("Skipped, by reason:\n");
    for (const auto& [reason, count] : n.skipped_by_reason) {
      fmt::print("  {:>3} {}\n", count, reason);
    }
  }
  fmt::print(
      "\n{} cases on {}: {} agreed, {} known deviations, {} unexplained mismatches, {} skipped "
      "({} ms)\n",
      n.total, result.backend, n.agreed, n.deviations, n.mismatches, n.skipped,
      result.elapsed.count());
}

}  // namespace

void add_modes(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "modes",
      "Run the mode-transition matrix (every single control write from every reachable mode, "
      "and the routes between modes) on the CPU and compare with the SDM model");
  auto args = std::make_shared<ModesArgs>();
  cmd->add_flag("--json", args->json, "Print every case as JSON");
  cmd->add_option("--backend", args->backend, "Where to run the probe (only: kvm)");
  cmd->add_option("--from", args->from,
                  "Only steps from this mode: real, protected, paging32, pae, compat4, long64, "
                  "compat5, long64-5");
  cmd->add_option("--step", args->step, "Only steps whose label contains this text");
  cmd->add_flag("--no-routes", args->no_routes, "Skip the named routes");
  cmd->add_flag("--routes-only", args->routes_only, "Only the named routes");
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  cmd->add_option("--watchdog-ms", args->watchdog_ms,
                  "Report a hang after this long without an exit")
      ->check(CLI::Range(10U, 600000U));
  cmd->callback([args, &ctx] {
    if (args->backend != "kvm") {
      throw UsageError(fmt::format("unknown backend '{}' (available: kvm)", args->backend));
    }
    lab::MatrixOptions options;
    options.lab.watchdog = std::chrono::milliseconds(args->watchdog_ms);
    if (!args->from.empty()) {
      options.only_from = lab::mode_from_short_name(args->from);
      if (!options.only_from) {
        throw UsageError(fmt::format(
            "unknown mode '{}' for --from (real, protected, paging32, pae, compat4, long64, "
            "compat5, long64-5)",
            args->from));
      }
    }
    if (args->routes_only && (args->no_routes || !args->from.empty() || !args->step.empty())) {
      throw UsageError("--routes-only does not combine with --no-routes, --from or --step");
    }
    options.step_filter = args->step;
    options.run_matrix = !args->routes_only;
    options.run_routes = !args->no_routes;
    int done = 0;
    if (!args->quiet) {
      options.on_case = [&done](const lab::MatrixCase&) {
        if (++done % 25 == 0) fmt::print(stderr, "pagelab modes: {} cases done\n", done);
      };
    }
    const auto flavour = kvm::detect_flavour();
    const auto result = lab::run_mode_matrix(options);
    if (args->json) {
      auto j = result.to_json();
      j["flavour"] = flavour.name;
      fmt::print("{}\n", j.dump(2));
    } else {
      print_text(result, kvm::describe(flavour));
    }
    ctx.exit_code = result.passed() ? 0 : 1;
  });
}

}  // namespace pagelab::cli

// `pagelab modes`: the mode-transition regression suite. Every single control write
// from every reachable mode, and the named routes, on the CPU, against the model.
#include <fmt/core.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "case_report.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/backend/backend.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"
#include "pagelab/lab/modes/mode_matrix.hpp"
#include "pagelab/lab/report/json.hpp"

namespace pagelab::cli {

namespace {

struct ModesArgs {
  bool json = false;
  bool tap = false;
  bool verbose = false;
  std::string junit;
  std::string case_id;
  bool quiet = false;
  bool no_routes = false;
  bool routes_only = false;
  std::string backend = "auto";
  std::string from;
  std::string step;
  unsigned watchdog_ms = 2000;
};

std::string clip(const std::string& text, std::size_t width) {
  if (text.size() <= width) return text;
  return text.substr(0, width - 3) + "...";
}

bool g_verbose = false;  // -v: the details of known deviations too

// The command that runs this one case again, on the backend it ran on.
std::string case_reproducer(const lab::MatrixCase& c) {
  return fmt::format("pagelab modes --case '{}' --backend {}", c.id(),
                     c.backend == "qemu-tcg" ? "qemu" : c.backend);
}

void print_case(const lab::MatrixCase& c) {
  fmt::print("{:<10} {:<38} {:<16} {:<16} {:<9} {}\n", lab::short_name(c.from),
             clip(c.step.label, 38), c.expected_text(), c.observed_text(),
             lab::to_string(c.verdict), clip(c.expected.rule, 90));
  if (c.verdict == lab::CaseVerdict::Deviation && !g_verbose) {
    fmt::print("{:<10} !! known deviation {}; details: {} -v\n", "", c.deviation_id,
               case_reproducer(c));
  } else if (c.verdict == lab::CaseVerdict::Mismatch || c.verdict == lab::CaseVerdict::Deviation) {
    fmt::print("{:<10} !! {}\n", "", c.detail);
  } else if (c.verdict == lab::CaseVerdict::Skipped) {
    fmt::print("{:<10} -- {}\n", "", clip(c.detail, 140));
  }
}

void print_header() {
  fmt::print("{:<10} {:<38} {:<16} {:<16} {:<9} {}\n", "from", "transition", "expected", "observed",
             "verdict", "rule");
}

// "kvm_pvm (modules: ...)" on KVM, "qemu-tcg (QEMU TCG, -cpu max)" on QEMU.
std::string describe_platform(const lab::MatrixResult& result) {
  if (result.backend == "kvm") return kvm::describe(kvm::detect_flavour());
  return fmt::format("{} (QEMU TCG, -cpu max)", result.backend);
}

void print_summary(const lab::MatrixResult& result) {
  const auto n = result.counts();
  fmt::print(
      "{} cases on {}: {} agreed, {} known deviations, {} unexplained mismatches, {} skipped "
      "({} ms; {} Lab{} started, {} reset, {} cases on a rewound Lab)\n",
      n.total, result.backend, n.agreed, n.deviations, n.mismatches, n.skipped,
      result.elapsed.count(), result.labs_started, result.labs_started == 1 ? "" : "s",
      result.resets, result.rewinds);
}

void print_text(const lab::MatrixResult& result) {
  fmt::print("pagelab modes on {} (backend {})\n", describe_platform(result), result.backend);
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
  fmt::print("\n");
  print_summary(result);
}

// `--backend all`: one row per case, the architecture's verdict and what each backend
// did. Cases are matched by route, from-state and label; a backend whose CPUID makes
// the model list other steps shows "-" for the ones it lacks.
struct CaseKey {
  std::string route, from, label;
  auto operator<=>(const CaseKey&) const = default;
};

CaseKey key_of(const lab::MatrixCase& c) {
  return {c.route, std::string(lab::short_name(c.from)), c.step.label};
}

std::vector<std::pair<CaseKey, std::vector<const lab::MatrixCase*>>> align(
    const std::vector<lab::MatrixResult>& results) {
  std::vector<std::pair<CaseKey, std::vector<const lab::MatrixCase*>>> rows;
  std::map<CaseKey, std::size_t> index;
  auto add = [&](std::size_t b, const lab::MatrixCase& c) {
    const auto key = key_of(c);
    auto [it, inserted] = index.try_emplace(key, rows.size());
    if (inserted) rows.emplace_back(key, std::vector<const lab::MatrixCase*>(results.size()));
    // Routes repeat labels ("EFER.LME 0->1 while paging"): keep the first free slot.
    for (std::size_t i = it->second; i < rows.size(); ++i) {
      if (rows[i].first == key && rows[i].second[b] == nullptr) {
        rows[i].second[b] = &c;
        return;
      }
    }
    rows.emplace_back(key, std::vector<const lab::MatrixCase*>(results.size()));
    rows.back().second[b] = &c;
  };
  for (std::size_t b = 0; b < results.size(); ++b) {
    for (const auto& c : results[b].cases) add(b, c);
    for (const auto& r : results[b].routes) {
      for (const auto& c : r.steps) add(b, c);
    }
  }
  return rows;
}

std::string cell(const lab::MatrixCase* c) {
  if (c == nullptr) return "-";
  return fmt::format("{} {}", c->observed_text(), lab::to_string(c->verdict));
}

void print_all_text(const std::vector<lab::MatrixResult>& results) {
  fmt::print("pagelab modes on every available backend:\n");
  for (const auto& r : results) fmt::print("  {}: {}\n", r.backend, describe_platform(r));
  for (const auto& r : results) {
    for (const auto& note : r.notes) fmt::print("note ({}): {}\n", r.backend, note);
  }
  fmt::print("\n{:<8} {:<10} {:<38} {:<16}", "route", "from", "transition", "architecture");
  for (const auto& r : results) fmt::print(" {:<26}", r.backend);
  fmt::print("\n");
  for (const auto& [key, cases] : align(results)) {
    // The model judges with each backend's CPUID, so the verdicts can differ.
    std::string expected;
    for (const auto* c : cases) {
      if (c == nullptr) continue;
      if (expected.empty()) {
        expected = c->expected_text();
      } else if (expected != c->expected_text()) {
        expected = "(by CPUID)";
      }
    }
    fmt::print("{:<8} {:<10} {:<38} {:<16}", key.route.empty() ? "-" : key.route, key.from,
               clip(key.label, 38), expected);
    for (const auto* c : cases) fmt::print(" {:<26}", cell(c));
    fmt::print("\n");
    for (std::size_t b = 0; b < cases.size(); ++b) {
      const auto* c = cases[b];
      if (c == nullptr) continue;
      if (expected == "(by CPUID)") {
        fmt::print("{:<8} {} expects {}\n", "", results[b].backend, c->expected_text());
      }
      if (c->verdict == lab::CaseVerdict::Mismatch || c->verdict == lab::CaseVerdict::Deviation) {
        fmt::print("{:<8} !! {}: {}\n", "", results[b].backend, c->detail);
      }
    }
  }
  fmt::print("\n");
  for (const auto& r : results) print_summary(r);
}

nlohmann::json all_json(const std::vector<lab::MatrixResult>& results) {
  nlohmann::json j = lab::report::document("modes");
  j["backend"] = "all";
  j["results"] = nlohmann::json::array();
  for (const auto& r : results) j["results"].push_back(r.to_json());
  j["comparison"] = nlohmann::json::array();
  for (const auto& [key, cases] : align(results)) {
    nlohmann::json row{
        {"id", key.route.empty() ? key.from + ":" + key.label : "route:" + key.route},
        {"from", key.from},
        {"transition", key.label}};
    if (!key.route.empty()) row["route"] = key.route;
    row["backends"] = nlohmann::json::object();
    for (std::size_t b = 0; b < cases.size(); ++b) {
      const auto* c = cases[b];
      if (c == nullptr) continue;
      nlohmann::json cj{{"expected", c->expected_text()},
                        {"observed", c->observed_text()},
                        {"verdict", lab::json_verdict(c->verdict)},
                        {"rule", c->expected.rule}};
      if (!c->deviation_id.empty()) cj["deviation"] = c->deviation_id;
      row["backends"][results[b].backend] = cj;
    }
    j["comparison"].push_back(row);
  }
  return j;
}

// The backends `--backend` names: one, or for "all" every one that can run here.
std::vector<lab::BackendKind> chosen_backends(const std::string& text) {
  if (text == "all") {
    std::vector<lab::BackendKind> kinds;
    std::vector<std::string> why;
    if (auto kvm_why = kvm::System::unavailable_reason()) {
      why.push_back("KVM: " + *kvm_why);
    } else {
      kinds.push_back(lab::BackendKind::Kvm);
    }
    if (lab::find_qemu_binary()) {
      kinds.push_back(lab::BackendKind::Qemu);
    } else {
      why.push_back(fmt::format("QEMU: {} is not installed", lab::qemu_binary_name()));
    }
    if (kinds.empty()) {
      throw lab::NoBackend(fmt::format("no backend available: {}; {}", why[0], why[1]));
    }
    for (const auto& w : why) fmt::print(stderr, "pagelab modes: skipping {}\n", w);
    return kinds;
  }
  try {
    return {lab::parse_backend_kind(text)};
  } catch (const std::invalid_argument&) {
    throw UsageError(fmt::format("unknown backend '{}' (choose kvm, qemu, auto or all)", text));
  }
}

lab::report::CaseVerdict verdict_of(lab::CaseVerdict v) {
  switch (v) {
    case lab::CaseVerdict::Agreed:
      return lab::report::CaseVerdict::Passed;
    case lab::CaseVerdict::Deviation:
      return lab::report::CaseVerdict::KnownDeviation;
    case lab::CaseVerdict::Mismatch:
      return lab::report::CaseVerdict::Failed;
    case lab::CaseVerdict::Skipped:
      return lab::report::CaseVerdict::Skipped;
  }
  return lab::report::CaseVerdict::Failed;
}

// One TAP / JUnit case per single step, and one per route (its steps are one story).
std::vector<CaseLine> case_lines(const std::vector<lab::MatrixResult>& results) {
  std::vector<CaseLine> out;
  for (const auto& r : results) {
    for (const auto& c : r.cases) {
      out.push_back({fmt::format("{} from {}", r.backend, lab::short_name(c.from)),
                     fmt::format("{} on {}", c.id(), r.backend), verdict_of(c.verdict), c.detail,
                     c.deviation_id, "", case_reproducer(c)});
    }
    for (const auto& route : r.routes) {
      CaseLine line{fmt::format("{} routes", r.backend),
                    fmt::format("route:{} on {} ({})", route.name, r.backend, route.description),
                    verdict_of(route.overall()),
                    "",
                    "",
                    "",
                    ""};
      for (const auto& c : route.steps) {
        if (c.verdict == lab::CaseVerdict::Agreed) continue;
        if (line.reason.empty()) line.reason = fmt::format("{}: {}", c.step.label, c.detail);
        line.details +=
            fmt::format("{}: {} {}\n", c.step.label, lab::to_string(c.verdict), c.detail);
        if (line.deviation.empty()) line.deviation = c.deviation_id;
        if (line.reproducer.empty()) line.reproducer = case_reproducer(c);
      }
      if (line.reproducer.empty()) {
        line.reproducer = fmt::format("pagelab modes --case 'route:{}' --backend {}", route.name,
                                      r.backend == "qemu-tcg" ? "qemu" : r.backend);
      }
      out.push_back(std::move(line));
    }
  }
  return out;
}

}  // namespace

void add_modes(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "modes",
      "Run the mode-transition matrix (every single control write from every reachable mode, "
      "and the routes between modes) on the CPU and compare with the SDM model");
  auto args = std::make_shared<ModesArgs>();
  cmd->add_flag("--json", args->json, "Print every case as JSON (docs/json.md)");
  cmd->add_flag("--tap", args->tap,
                "Print TAP13: one test point per step and per route (a known deviation is "
                "`not ok ... # TODO known deviation NAME`)");
  cmd->add_option("--junit", args->junit, "Also write JUnit XML to this file");
  cmd->add_option("--case", args->case_id,
                  "Run one case: FROM:TRANSITION as in the JSON's \"id\" (e.g. 'pae:CR0.PG 1->0'), "
                  "or route:NAME");
  cmd->add_flag("-v,--verbose", args->verbose, "Show the details of known deviations too");
  cmd->add_option("--backend", args->backend,
                  "kvm, qemu (QEMU TCG, -cpu max), auto (KVM where /dev/kvm works, else QEMU) "
                  "or all (every available backend, side by side)");
  cmd->add_option("--from", args->from,
                  "Only steps from this mode: real, protected, paging32, pae, compat4, long64, "
                  "compat5, long64-5");
  cmd->add_option("--step", args->step, "Only steps whose label contains this text");
  cmd->add_flag("--no-routes", args->no_routes, "Skip the named routes");
  cmd->add_flag("--routes-only", args->routes_only, "Only the named routes");
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
  cmd->add_option("--watchdog-ms", args->watchdog_ms,
                  fmt::format("Report a hang after this long without an exit (on QEMU, also "
                              "once it has spent {} ms of CPU time on one case)",
                              lab::MatrixOptions{}.case_busy_watchdog.count()))
      ->check(CLI::Range(10U, 600000U));
  cmd->callback([args, &ctx] {
    const auto kinds = chosen_backends(args->backend);
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
    if (args->json && args->tap)
      throw UsageError("--json and --tap both print to stdout: choose one");
    options.step_filter = args->step;
    options.run_matrix = !args->routes_only;
    options.run_routes = !args->no_routes;
    // --case ID: the one mode and label it names (the filter is a substring; only the
    // exact label is kept), or one route.
    std::string case_label, case_route;
    if (!args->case_id.empty()) {
      if (args->routes_only || args->no_routes || !args->from.empty() || !args->step.empty()) {
        throw UsageError(
            "--case does not combine with --from, --step, --routes-only or --no-routes");
      }
      const auto colon = args->case_id.find(':');
      if (colon == std::string::npos || colon + 1 == args->case_id.size()) {
        throw UsageError(fmt::format(
            "--case '{}': expected FROM:TRANSITION (e.g. 'pae:CR0.PG 1->0') or route:NAME",
            printable(args->case_id)));
      }
      const std::string head = args->case_id.substr(0, colon);
      const std::string tail = args->case_id.substr(colon + 1);
      if (head == "route") {
        case_route = tail;
        options.run_matrix = false;
      } else {
        options.only_from = lab::mode_from_short_name(head);
        if (!options.only_from) {
          throw UsageError(
              fmt::format("--case: unknown mode '{}' (real, protected, paging32, pae, "
                          "compat4, long64, compat5, long64-5)",
                          printable(head)));
        }
        case_label = tail;
        options.step_filter = tail;
        options.run_routes = false;
      }
    }
    g_verbose = args->verbose;
    int done = 0;
    if (!args->quiet) {
      options.on_case = [&done](const lab::MatrixCase& c) {
        if (++done % 25 == 0) {
          fmt::print(stderr, "pagelab modes: {} cases done on {}\n", done, c.backend);
        }
      };
    }
    std::vector<lab::MatrixResult> results;
    for (const auto kind : kinds) {
      options.lab.backend = kind;
      done = 0;
      results.push_back(lab::run_mode_matrix(options));
      auto& r = results.back();
      if (!case_label.empty()) {
        std::erase_if(r.cases,
                      [&](const lab::MatrixCase& c) { return c.step.label != case_label; });
      }
      if (!case_route.empty()) {
        std::erase_if(r.routes, [&](const lab::RouteResult& x) { return x.name != case_route; });
      }
    }
    if (!args->case_id.empty()) {
      const bool found = std::any_of(
          results.begin(), results.end(),
          [](const lab::MatrixResult& r) { return !r.cases.empty() || !r.routes.empty(); });
      if (!found) {
        throw UsageError(
            fmt::format("--case '{}': no such case (the JSON's \"id\" fields list them)",
                        printable(args->case_id)));
      }
    }
    bool passed = true;
    bool any_case = false;
    for (const auto& r : results) {
      passed = passed && r.passed();
      any_case = any_case || r.counts().total > 0;
    }
    // A filter that matches nothing is a typo, not a pass.
    if (!any_case && (!args->step.empty() || !args->from.empty())) {
      throw UsageError(fmt::format("no case matches{}{} (see 'pagelab modes --help')",
                                   args->from.empty() ? "" : " --from " + printable(args->from),
                                   args->step.empty() ? "" : " --step " + printable(args->step)));
    }
    const auto lines = case_lines(results);
    if (!args->junit.empty()) {
      try {
        write_junit(args->junit, "pagelab modes", lines);
      } catch (const std::exception& e) {
        fmt::print(stderr, "pagelab: --junit: {}\n", e.what());
        passed = false;
      }
    }
    if (args->tap) {
      fmt::print("{}", tap_document(lines));
    } else if (args->json) {
      auto j = args->backend == "all" ? all_json(results) : results.front().to_json();
      if (args->backend != "all" && results.front().backend == "kvm") {
        j["flavour"] = kvm::detect_flavour().name;
      }
      print_json(j);
    } else if (args->backend == "all") {
      print_all_text(results);
    } else {
      print_text(results.front());
    }
    ctx.exit_code = passed ? 0 : 1;
  });
}

}  // namespace pagelab::cli

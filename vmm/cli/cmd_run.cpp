// `pagelab run FILE...`: runs scenario files on a backend (KVM or QEMU TCG), on every
// backend at once (--backend all: oracle vs KVM vs QEMU, case by case), or with
// --oracle-only on the model alone, and reports every access and expectation.
#include <fmt/core.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/lab/scenario/engine_machine.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_compare.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::cli {

namespace {

namespace sc = lab::scenario;

struct RunOptions {
  std::vector<std::string> files;
  bool json = false, oracle_only = false, verbose = false, strict = false;
  BackendChoice backend;
};

std::string slot_text(const sc::BackendSlot& s) {
  return s.unavailable ? fmt::format("{} unavailable: {}", s.name, *s.unavailable)
                       : fmt::format("{} ({})", s.name, s.description);
}

// Exit status when no backend could run under auto/all: the oracle judged every case,
// but a run that touched no CPU must not look green.
constexpr int NoBackendExit = 4;

int no_backend(bool json) {
  if (!json) {
    fmt::print(stderr,
               "pagelab: no backend could run here: nothing ran on a CPU (exit status {}; "
               "--oracle-only judges without one)\n",
               NoBackendExit);
  }
  return NoBackendExit;
}

// A run-time error that ends the run: the report of what ran is still printed (the
// JSON with an "error" object), then this.
struct RunError {
  std::string message;
  std::optional<sc::Location> where;
  int exit_code = 1;

  [[nodiscard]] nlohmann::json json() const {
    nlohmann::json j = {{"message", message}, {"exit_status", exit_code}};
    if (where) {
      j["file"] = where->file;
      j["line"] = where->line;
      j["column"] = where->column;
    }
    return j;
  }
  int report(bool json_output) const {
    if (!json_output) fmt::print(stderr, "pagelab: {}\n", message);
    return exit_code;
  }
};

// Bad input found only when it runs is still bad input (exit 2, FILE:LINE:COL); any
// other failure names the file it happened in.
RunError run_error(const std::exception& e, const sc::Scenario& s) {
  if (const auto* se = dynamic_cast<const sc::ScenarioError*>(&e)) {
    return RunError{printable(se->what()), se->where(), 2};
  }
  return RunError{printable(fmt::format("{}: error: {}", s.file, e.what())), std::nullopt, 1};
}

// --backend all: every scenario on every backend available here, case by case.
int run_all(const RunOptions& opts, const std::vector<sc::Scenario>& scenarios,
            const std::vector<lab::AccessDeviation>& known) {
  const auto slots = sc::every_backend();
  std::vector<std::string> ran;
  nlohmann::json slots_json = nlohmann::json::array();
  for (const auto& s : slots) {
    if (!s.unavailable) ran.push_back(s.name);
    nlohmann::json j = {{"name", s.name}, {"available", !s.unavailable}};
    if (s.unavailable) {
      j["reason"] = *s.unavailable;
    } else {
      j["description"] = s.description;
    }
    slots_json.push_back(j);
  }
  if (!opts.json) {
    for (const auto& s : slots) fmt::print("backend {}\n", slot_text(s));
    fmt::print("\n");
  }
  std::map<sc::CaseClass, unsigned> counts;
  unsigned cases = 0, partial = 0;
  nlohmann::json all = nlohmann::json::array();
  std::optional<RunError> error;
  for (const auto& s : scenarios) {
    sc::ScenarioComparison cmp;
    try {
      cmp = sc::compare_scenario(s, slots, known);
    } catch (const std::exception& e) {
      error = run_error(e, s);
      break;
    }
    for (const auto& c : cmp.cases) ++counts[c.classification];
    cases += static_cast<unsigned>(cmp.cases.size());
    partial += cmp.partial();
    if (opts.json) {
      all.push_back(cmp.to_json());
    } else {
      fmt::print("{}\n", sc::format_comparison(cmp, opts.verbose));
    }
  }
  const unsigned failed = counts[sc::CaseClass::Failed];
  if (opts.json) {
    nlohmann::json j = {{"backend", "all"}, {"backends", slots_json}, {"scenarios", all}};
    for (auto c : {sc::CaseClass::Agree, sc::CaseClass::DifferAllowed,
                   sc::CaseClass::KnownDeviation, sc::CaseClass::Failed, sc::CaseClass::Skipped}) {
      j["counts"][std::string(sc::to_string(c))] = counts[c];
    }
    j["counts"]["ran on only some backends"] = partial;
    j["failed"] = failed;
    if (ran.empty()) j["no_backend"] = true;
    if (error) j["error"] = error->json();
    print_json(j);
  } else {
    std::string ran_text;
    for (const auto& n : ran) ran_text += (ran_text.empty() ? "" : " vs ") + n;
    fmt::print(
        "{} cases in {} file{}, oracle vs {}: {} agree, {} differ (both allowed), {} known "
        "deviations, {} failed, {} skipped{}\n",
        cases, scenarios.size(), scenarios.size() == 1 ? "" : "s",
        ran_text.empty() ? "no backend" : ran_text, counts[sc::CaseClass::Agree],
        counts[sc::CaseClass::DifferAllowed], counts[sc::CaseClass::KnownDeviation], failed,
        counts[sc::CaseClass::Skipped],
        partial == 0 ? "" : fmt::format(" ({} ran on only some backends)", partial));
  }
  if (error) return error->report(opts.json);
  if (failed > 0) return 1;
  return ran.empty() ? no_backend(opts.json) : 0;
}

// One backend (or the oracle alone): the detailed report per scenario.
int run_one(const RunOptions& opts, const std::vector<sc::Scenario>& scenarios,
            const std::vector<lab::AccessDeviation>& known) {
  std::optional<sc::BackendSlot> slot;
  if (!opts.oracle_only) slot = sc::backend_slot(opts.backend.kind_to_run());
  const std::string backend = slot ? slot->name : "oracle";
  nlohmann::json all = nlohmann::json::array();
  unsigned passed = 0, failed = 0, skipped = 0, deviations = 0;
  std::optional<RunError> error;
  for (const auto& s : scenarios) {
    sc::ScenarioResult r;
    try {
      // A fresh machine per file: one that died with the previous file is not reused.
      std::unique_ptr<sc::Machine> machine;
      if (slot && !slot->unavailable) {
        lab::LabOptions options;
        options.backend = slot->kind;
        try {
          // The text report prints no walks; JSON lists every one.
          machine = sc::make_engine_machine(options, opts.json);
        } catch (const sc::ScenarioError&) {
          throw;
        } catch (const std::exception& e) {
          // The backend could not start (QEMU exited at once): this file fails, the next
          // one tries a fresh machine.
          r = sc::run_scenario(s, nullptr, known);
          r.backend = slot->name;
          r.verdict = sc::Verdict::Failed;
          r.reason = fmt::format("{} could not start: {}", slot->name, e.what());
          for (auto& a : r.accesses) {
            a.verdict = sc::Verdict::Skipped;
            a.reason = r.reason;
          }
        }
      }
      if (machine || !slot || slot->unavailable) r = sc::run_scenario(s, machine.get(), known);
    } catch (const std::exception& e) {
      error = run_error(e, s);
      break;
    }
    if (slot && slot->unavailable) {
      // Judged by the oracle (scenario bugs still fail) but nothing ran on a CPU.
      const std::string why = fmt::format("needs {}: {}", slot->name, *slot->unavailable);
      r.backend = slot->name;
      for (auto& a : r.accesses) {
        if (a.verdict == sc::Verdict::Passed) {
          a.verdict = sc::Verdict::Skipped;
          a.reason = why;
        }
      }
      if (r.verdict == sc::Verdict::Passed) r.verdict = sc::Verdict::Skipped;
      r.reason = why + " (--oracle-only judges it without a CPU)";
    }
    passed += r.count(sc::Verdict::Passed);
    failed += r.count(sc::Verdict::Failed);
    // A scenario that failed without a failed access (its backend never started).
    if (r.verdict == sc::Verdict::Failed && r.count(sc::Verdict::Failed) == 0) ++failed;
    skipped += r.count(sc::Verdict::Skipped);
    deviations += r.known_deviations();
    if (opts.json) {
      all.push_back(r.to_json());
    } else {
      fmt::print("{}\n", sc::format_report(r, opts.verbose));
    }
  }
  if (opts.json) {
    nlohmann::json j = {{"backend", backend}, {"scenarios", all},
                        {"passed", passed},   {"failed", failed},
                        {"skipped", skipped}, {"known_deviations", deviations}};
    if (slot && slot->unavailable) j["unavailable"] = *slot->unavailable;
    if (error) j["error"] = error->json();
    print_json(j);
  } else {
    fmt::print("{} passed, {} failed, {} skipped{} ({} file{}, on {})\n", passed, failed, skipped,
               deviations == 0
                   ? ""
                   : fmt::format(" ({} known deviation{})", deviations, deviations == 1 ? "" : "s"),
               scenarios.size(), scenarios.size() == 1 ? "" : "s", backend);
  }
  if (error) return error->report(opts.json);
  if (failed > 0) return 1;
  return slot && slot->unavailable ? no_backend(opts.json) : 0;
}

}  // namespace

void add_run(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "run", "Run scenario files (.pgl) on the CPU, every access checked against the oracle");
  cmd->footer(lab::scenario::scenario_help_text() +
              "\n\nWith --backend all every scenario runs on each backend available here (KVM "
              "where /dev/kvm works,\nQEMU TCG where installed) and each access is classified: "
              "agree; differ, both allowed;\nknown deviation (a named platform departure from the "
              "architecture, reported, not failed);\nor FAILED (an unknown departure, an "
              "expectation not met, a scenario bug)."
              "\n\nExit status: 0 every case passed, was skipped with a reason or is a known "
              "deviation;\n1 a case failed (also: the guest stopped or QEMU exited during it; "
              "the rest of that file is\nskipped and the next file gets a fresh machine); 2 a "
              "scenario file is malformed (FILE:LINE:COL: message),\nor the backend asked for "
              "with --backend cannot start here; 4 no backend could run here\n(auto/all): the "
              "oracle judged every case, nothing ran on a CPU.");
  auto opts = std::make_shared<RunOptions>();
  cmd->add_option("files", opts->files, "Scenario files")->required();
  cmd->add_flag("--json", opts->json, "Print JSON instead of the readable report");
  cmd->add_flag("--oracle-only", opts->oracle_only,
                "Judge the scenarios with the model alone (no CPU, no backend needed)");
  cmd->add_flag("-v,--verbose", opts->verbose, "Also list the expectations that passed");
  cmd->add_flag("--strict", opts->strict,
                "Known platform deviations fail too (as if the list of known deviations were "
                "empty)");
  add_backend_option(*cmd, opts->backend, /*allow_all=*/true);
  auto* backend_option = cmd->get_option("--backend");
  cmd->callback([opts, backend_option, &ctx] {
    (void)opts->backend.kind();  // a bad --backend is reported before anything is parsed
    const bool explicit_backend = backend_option->count() > 0;
    if (opts->oracle_only && explicit_backend) {
      throw UsageError("--oracle-only runs no backend: drop --backend, or --oracle-only");
    }
    // An explicitly requested backend that cannot start is an error, not a row of skips.
    if (!opts->oracle_only && explicit_backend && !opts->backend.all() &&
        opts->backend.kind() != lab::BackendKind::Auto) {
      const auto slot = sc::backend_slot(opts->backend.kind());
      if (slot.unavailable) {
        throw UsageError(fmt::format("backend {} unavailable: {}", slot.name, *slot.unavailable));
      }
    }
    // Every file is parsed before anything runs, so a typo costs no VM time.
    std::vector<sc::Scenario> scenarios;
    for (const auto& f : opts->files) {
      try {
        scenarios.push_back(sc::load_scenario(f));
      } catch (const sc::ScenarioError& e) {
        throw UsageError(e.what());
      }
    }
    static const std::vector<lab::AccessDeviation> none;
    const auto& known = opts->strict ? none : lab::known_access_deviations();
    ctx.exit_code = opts->backend.all() && !opts->oracle_only ? run_all(*opts, scenarios, known)
                                                              : run_one(*opts, scenarios, known);
  });
}

}  // namespace pagelab::cli

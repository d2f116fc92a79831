// `pagelab run FILE...`: runs scenario files on the CPU (or with --oracle-only, on the
// model alone) and reports every access and expectation.
#include <fmt/core.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "commands.hpp"
#include "pagelab/lab/scenario.hpp"
#include "pagelab/lab/scenario_kvm.hpp"
#include "pagelab/lab/scenario_run.hpp"

namespace pagelab::cli {

namespace {

struct RunOptions {
  std::vector<std::string> files;
  bool json = false, oracle_only = false, verbose = false;
};

}  // namespace

void add_run(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "run", "Run scenario files (.pgl) on the CPU, every access checked against the oracle");
  cmd->footer(lab::scenario::scenario_help_text() +
              "\n\nExit status: 0 every case passed or was skipped with a reason; 1 a case "
              "failed;\n2 a scenario file is malformed (FILE:LINE:COL: message).");
  auto opts = std::make_shared<RunOptions>();
  cmd->add_option("files", opts->files, "Scenario files")->required();
  cmd->add_flag("--json", opts->json, "Print JSON instead of the readable report");
  cmd->add_flag("--oracle-only", opts->oracle_only,
                "Judge the scenarios with the model alone (no CPU, no /dev/kvm needed)");
  cmd->add_flag("-v,--verbose", opts->verbose, "Also list the expectations that passed");
  cmd->callback([opts, &ctx] {
    namespace sc = lab::scenario;
    // Every file is parsed before anything runs, so a typo costs no VM time.
    std::vector<sc::Scenario> scenarios;
    for (const auto& f : opts->files) {
      try {
        scenarios.push_back(sc::load_scenario(f));
      } catch (const sc::ScenarioError& e) {
        throw UsageError(e.what());
      }
    }
    std::optional<std::string> no_kvm;
    if (!opts->oracle_only) no_kvm = sc::kvm_unavailable_reason();

    nlohmann::json all = nlohmann::json::array();
    unsigned passed = 0, failed = 0, skipped = 0;
    for (const auto& s : scenarios) {
      std::unique_ptr<sc::Machine> machine;
      if (!opts->oracle_only && !no_kvm) machine = sc::make_kvm_machine();
      sc::ScenarioResult r;
      try {
        r = sc::run_scenario(s, machine.get());
      } catch (const sc::ScenarioError& e) {
        throw UsageError(e.what());
      }
      if (no_kvm) {
        // Judged by the oracle (scenario bugs still fail) but nothing ran on a CPU.
        for (auto& a : r.accesses) {
          if (a.verdict == sc::Verdict::Passed) {
            a.verdict = sc::Verdict::Skipped;
            a.reason = "needs /dev/kvm: " + *no_kvm;
          }
        }
        if (r.verdict == sc::Verdict::Passed) r.verdict = sc::Verdict::Skipped;
        r.reason = "needs /dev/kvm: " + *no_kvm + " (--oracle-only judges it without a CPU)";
      }
      passed += r.count(sc::Verdict::Passed);
      failed += r.count(sc::Verdict::Failed);
      skipped += r.count(sc::Verdict::Skipped);
      if (opts->json) {
        all.push_back(r.to_json());
      } else {
        fmt::print("{}\n", sc::format_report(r, opts->verbose));
      }
    }
    if (opts->json) {
      nlohmann::json j = {{"backend", opts->oracle_only ? "oracle" : "kvm"},
                          {"scenarios", all},
                          {"passed", passed},
                          {"failed", failed},
                          {"skipped", skipped}};
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("{} passed, {} failed, {} skipped ({} file{})\n", passed, failed, skipped,
                 scenarios.size(), scenarios.size() == 1 ? "" : "s");
    }
    ctx.exit_code = failed > 0 ? 1 : 0;
  });
}

}  // namespace pagelab::cli

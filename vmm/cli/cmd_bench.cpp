// `pagelab bench`: how fast the experiment engine checks accesses on this machine.
#include <fmt/core.h>

#include <optional>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/campaign/cpu_time.hpp"
#include "pagelab/fuzz/campaign.hpp"
#include "pagelab/fuzz/throughput.hpp"
#include "pagelab/lab/bench/engine_bench.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/lab.hpp"

namespace pagelab::cli {

void add_bench(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure checked accesses per second (CPL0/CPL3, succeeding/faulting), accesses per VM "
      "exit (doorbell on QEMU), the in-guest exception cost, the oracle's share of the time and "
      "the fuzzer's checked cases per second");
  auto json = std::make_shared<bool>(false);
  auto batch = std::make_shared<std::string>("4000");
  auto rounds = std::make_shared<std::string>("3");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->add_option(
      "--batch", *batch,
      fmt::format("Accesses per batch (one VM exit each), 1 to {}", lab::Engine::batch_capacity()));
  cmd->add_option("--rounds", *rounds, "Batches per workload");
  auto fuzz_cases = std::make_shared<std::string>("1024");
  cmd->add_option("--fuzz-cases", *fuzz_cases,
                  "Fuzz cases (seed 1, every profile, in --fuzz-mode) run as `pagelab fuzz` runs "
                  "them, for the fuzzer's cases per second and accesses per exit; 0: none");
  auto fuzz_mode = std::make_shared<std::string>("4level");
  cmd->add_option("--fuzz-mode", *fuzz_mode,
                  "Paging mode of the fuzz cases: 32bit, pae, 4level or 5level")
      ->default_str("4level");
  auto backend = std::make_shared<BackendChoice>();
  add_backend_option(*cmd, *backend);
  cmd->callback([json, batch, rounds, fuzz_cases, fuzz_mode, backend, &ctx] {
    lab::BenchOptions options;
    options.batch = parse_u64(*batch, "--batch");
    const auto round_count = parse_u64(*rounds, "--rounds");
    // A count that does not fit is refused, not cut to its low 32 bits.
    if (round_count == 0 || round_count > 1'000'000) {
      throw UsageError("--rounds must be 1 to 1000000");
    }
    options.rounds = static_cast<unsigned>(round_count);
    // Checked here, before a machine starts: bad input is exit 2 and costs no VM.
    if (options.batch == 0 || options.batch > lab::Engine::batch_capacity()) {
      throw UsageError(fmt::format("--batch must be 1 to {} (accesses per round trip)",
                                   lab::Engine::batch_capacity()));
    }
    const auto fuzz_count = parse_u64(*fuzz_cases, "--fuzz-cases");
    if (fuzz_count > 1'000'000) throw UsageError("--fuzz-cases must be 0 to 1000000");
    const auto mode = fuzz::mode_named(*fuzz_mode);
    if (!mode) {
      throw UsageError(fmt::format("--fuzz-mode: unknown mode '{}' (32bit, pae, 4level, 5level)",
                                   printable(*fuzz_mode, 60)));
    }
    lab::LabOptions lab_options;
    lab_options.backend = backend->kind_to_run();
    lab::Lab lab(lab_options);
    const auto result = lab::run_bench(lab, options);
    // The same machine, started over (the engine's mode is left behind).
    std::optional<fuzz::Throughput> fuzzed;
    std::optional<std::string> fuzz_unavailable;
    if (fuzz_count != 0) {
      lab.reset();
      fuzzed = fuzz::measure_throughput(lab, {.mode = *mode, .cases = fuzz_count});
      // Nothing to show but the reason, as a campaign says it.
      if (fuzzed->unavailable) {
        fuzz_unavailable = fuzzed->unavailable;
        fuzzed.reset();
      }
    }
    // The fuzzer's checked accesses per second against the mixed workload's (CPL0 and
    // CPL3, succeeding and faulting), measured in the same run: how much a fuzz case's
    // own work (its tables, flushes, history) costs per access.
    std::optional<double> fuzz_per_s, mixed_over_fuzz;
    if (fuzzed && fuzzed->seconds > 0) {
      fuzz_per_s = static_cast<double>(fuzzed->accesses) / fuzzed->seconds;
      for (const auto& w : result.workloads) {
        if (w.name == "mixed" && *fuzz_per_s > 0) {
          mixed_over_fuzz = w.checked_per_second() / *fuzz_per_s;
        }
      }
    }
    const unsigned cpus = campaign::usable_cpus();
    if (*json) {
      auto j = result.to_json();
      if (fuzz_unavailable) {
        j["fuzz"] = {{"mode", fuzz::mode_keyword(*mode)}, {"unavailable", *fuzz_unavailable}};
      }
      if (fuzzed) {
        j["fuzz"] = {{"mode", fuzzed->mode},
                     {"cases", fuzzed->cases},
                     {"accesses", fuzzed->accesses},
                     {"vm_exits", fuzzed->exits},
                     {"seconds", fuzzed->seconds},
                     {"guest_seconds", fuzzed->guest_seconds},
                     {"cases_per_second", fuzzed->cases_per_second()},
                     {"accesses_per_vm_exit", fuzzed->accesses_per_exit()},
                     {"failed", fuzzed->failed},
                     {"known_deviation", fuzzed->known},
                     {"skipped", fuzzed->skipped},
                     {"host_cpu_seconds", fuzzed->host_cpu_seconds},
                     {"backend_cpu_seconds", fuzzed->backend_cpu_seconds},
                     {"usable_cpus", cpus}};
        const auto bound = [&](double cpu_seconds) {
          return cpu_seconds > 0 ? nlohmann::json(fuzzed->cases_per_second_bound(cpu_seconds, cpus))
                                 : nlohmann::json(nullptr);
        };
        j["fuzz"]["cases_per_second_bound"] =
            bound(fuzzed->host_cpu_seconds + fuzzed->backend_cpu_seconds);
        j["fuzz"]["cases_per_second_bound_backend_alone"] = bound(fuzzed->backend_cpu_seconds);
        j["fuzz"]["checked_accesses_per_second"] = fuzz_per_s.value_or(0.0);
        j["fuzz"]["mixed_over_fuzz"] =
            mixed_over_fuzz ? nlohmann::json(*mixed_over_fuzz) : nlohmann::json(nullptr);
      }
      print_json(j);  // a whole document (docs/json.md)
    } else {
      fmt::print("{}", result.text());
      if (fuzz_unavailable) {
        fmt::print("fuzz ({}): not run: {}\n", fuzz::mode_keyword(*mode),
                   printable(*fuzz_unavailable, 300));
      }
      if (fuzzed) {
        fmt::print(
            "fuzz ({}, seed 1, every profile): {} checked cases in {:.2f} s = {:.0f} cases/s; "
            "{} accesses, {:.1f} per {}; {} failed, {} known deviation, {} skipped\n",
            fuzzed->mode, fuzzed->cases, fuzzed->seconds, fuzzed->cases_per_second(),
            fuzzed->accesses, fuzzed->accesses_per_exit(),
            result.round_trip == "doorbells" ? "doorbell" : "VM exit", fuzzed->failed,
            fuzzed->known, fuzzed->skipped);
        if (fuzz_per_s && mixed_over_fuzz) {
          fmt::print("fuzz: {:.0f} checked accesses/s; mixed's checked/s is {:.1f}x that\n",
                     *fuzz_per_s, *mixed_over_fuzz);
        }
        if (fuzzed->seconds > 0) {
          const double guest = 100 * fuzzed->guest_seconds / fuzzed->seconds;
          fmt::print(
              "fuzz: {:.0f}% of its time waiting for the guest, {:.0f}% the host's "
              "(planning, judging)\n",
              guest, 100 - guest);
        }
        // What a campaign on this machine can reach at best: every usable CPU busy at
        // this CPU cost per case (pagelab fuzz runs a worker per CPU).
        const double host = fuzzed->host_cpu_seconds, backend = fuzzed->backend_cpu_seconds;
        if (host + backend > 0) {
          const auto on = fmt::format("{} CPU{}", cpus, cpus == 1 ? "" : "s");
          const double at_most = fuzzed->cases_per_second_bound(host + backend, cpus);
          if (backend > 0) {
            fmt::print(
                "fuzz: CPU per case: {:.1f} us here (planning, judging), {:.1f} us in QEMU; with "
                "{} at most {:.0f} cases/s, and {:.0f} with a host that cost nothing\n",
                fuzzed->cpu_us_per_case(host), fuzzed->cpu_us_per_case(backend), on, at_most,
                fuzzed->cases_per_second_bound(backend, cpus));
          } else {
            fmt::print(
                "fuzz: CPU per case: {:.1f} us (planning, judging, and the guest in KVM_RUN); "
                "with {} at most {:.0f} cases/s\n",
                fuzzed->cpu_us_per_case(host), on, at_most);
          }
        }
      }
    }
    for (const auto& w : result.workloads)
      if (w.disagreements != 0) ctx.exit_code = 1;
  });
}

}  // namespace pagelab::cli

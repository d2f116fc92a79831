// `pagelab fuzz`: random page-table trees, entries, control state and histories, every
// access judged by the one judge, every new disagreement shrunk to a `.pgl` reproducer.
#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/campaign/atomic_file.hpp"
#include "pagelab/campaign/cpu_time.hpp"
#include "pagelab/campaign/duration.hpp"
#include "pagelab/campaign/progress.hpp"
#include "pagelab/campaign/shard.hpp"
#include "pagelab/campaign/stop_signal.hpp"
#include "pagelab/fuzz/campaign.hpp"
#include "pagelab/lab/scenario/scenario_compare.hpp"

namespace pagelab::cli {

namespace {

struct FuzzArgs {
  BackendChoice backend;
  std::string seed = "1", from = "0", cases, time, profile = "all", modes, findings, shard = "1/1",
              batch = std::to_string(fuzz::DefaultBatchCases), jobs = "auto", log_every;
  bool json = false, strict = false, no_pin = false;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Everything is checked before a machine starts: bad input is one line, exit 2.
fuzz::CampaignOptions options_of(const FuzzArgs& a) {
  namespace sc = lab::scenario;
  fuzz::CampaignOptions o;
  const auto kind = a.backend.kind();
  if (a.backend.all()) {
    o.backends.clear();
    for (const auto& slot : sc::every_backend()) {
      if (!slot.unavailable) o.backends.push_back(slot.kind);
    }
    if (o.backends.empty()) throw UsageError("--backend all: no backend can run here");
  } else {
    const auto slot = sc::backend_slot(kind);
    if (slot.unavailable) {
      throw UsageError(
          fmt::format("--backend {}: {}", a.backend.text, printable(*slot.unavailable, 300)));
    }
    o.backends = {slot.kind};
  }
  o.seed = parse_u64(a.seed, "--seed");
  o.first = parse_u64(a.from, "--from");
  if (!a.cases.empty()) {
    o.cases = parse_u64(a.cases, "--cases");
    if (*o.cases == 0) throw UsageError("--cases must be at least 1");
  }
  if (!a.time.empty()) {
    try {
      o.time = campaign::parse_duration(a.time);
    } catch (const std::invalid_argument& e) {
      throw UsageError(fmt::format("--time: {}", e.what()));
    }
  }
  if (!o.cases && !o.time) o.cases = 10000;
  const auto profile = fuzz::profile_named(a.profile);
  if (!profile) {
    throw UsageError(fmt::format("--profile: unknown profile '{}' (one of: {})",
                                 printable(a.profile, 60), fmt::join(fuzz::profile_names(), ", ")));
  }
  o.profile = *profile;
  for (const auto& m : split_commas(a.modes)) {
    const auto mode = fuzz::mode_named(m);
    if (!mode) {
      throw UsageError(
          fmt::format("--mode: unknown mode '{}' (32bit, pae, 4level, 5level)", printable(m, 60)));
    }
    o.modes.push_back(*mode);
  }
  try {
    o.shard = campaign::parse_shard(a.shard);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--shard: {}", e.what()));
  }
  const auto batch = parse_u64(a.batch, "--batch");
  if (batch == 0 || batch > 100000) throw UsageError("--batch must be 1 to 100000");
  o.batch_cases = batch;
  // A worker keeps about one CPU busy (its thread and its machine take turns).
  const auto jobs = a.jobs == "auto" ? std::clamp<std::uint64_t>(campaign::usable_cpus(), 1, 64)
                                     : parse_u64(a.jobs, "-j");
  if (jobs == 0 || jobs > 64) throw UsageError("-j: 1 to 64 workers, or auto");
  o.jobs = static_cast<unsigned>(jobs);
  o.pin_workers = !a.no_pin;
  o.strict = a.strict;
  if (!a.findings.empty()) {
    try {
      campaign::prepare_findings_directory(a.findings);
    } catch (const std::invalid_argument& e) {
      throw UsageError(printable(e.what(), 400));  // names --findings itself
    }
    o.findings = a.findings;
  }
  return o;
}

std::optional<std::chrono::milliseconds> log_interval(const FuzzArgs& a) {
  if (a.log_every.empty()) return std::nullopt;
  try {
    return campaign::parse_duration(a.log_every);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--log-every: {}", e.what()));
  }
}

}  // namespace

void add_fuzz(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "fuzz",
      "Fuzz page tables on the CPU: random trees and entry mutations in every paging mode the "
      "backend can enter, control state (WP, SMEP, SMAP, PKE+PKRU, NXE, AC), histories (entry "
      "changes with and without INVLPG / MOV CR3, host writes), every access judged by the "
      "oracle; each new disagreement shrunk to a .pgl reproducer that `pagelab run` replays");
  cmd->footer(
      "\nCases are numbered from 0; the same --seed and --shard give the same cases. Shard K/N "
      "runs the numbers n with n % N == K-1 (auto: the array index of a Slurm job array or a "
      "Kubernetes Indexed Job). Known platform deviations are counted by name, not reported as "
      "findings, unless --strict.\n\nExit status: 0 no finding, 1 findings, 2 bad input.");
  auto a = std::make_shared<FuzzArgs>();
  add_backend_option(*cmd, a->backend, /*allow_all=*/true);
  cmd->add_option("--seed", a->seed, "Seed of the case space")->default_str("1");
  cmd->add_option("--cases", a->cases,
                  "Case numbers 0..N-1, or from --from on (this shard runs its share); default "
                  "10000 without --time");
  cmd->add_option("--from", a->from,
                  "The first case number (to run again the batches before a case that was not "
                  "reproduced alone, as its report says)")
      ->default_str("0");
  cmd->add_option("--time", a->time, "Stop after this long (90s, 10m, 1h30m)");
  cmd->add_option("--profile", a->profile, "Focus: tlb, rights, reserved, modes or all")
      ->default_str("all");
  cmd->add_option("--mode", a->modes,
                  "Paging modes, comma-separated: 32bit, pae, 4level, 5level (default: every mode "
                  "the backend can enter)");
  cmd->add_option("--findings", a->findings,
                  "Write each new finding's shrunk reproducer here (created; written atomically)");
  cmd->add_option("--shard", a->shard, "K/N, or auto (Slurm / Kubernetes array index)")
      ->default_str("1/1");
  cmd->add_option("--batch", a->batch, "Cases per batch of the engine")
      ->default_str(std::to_string(fuzz::DefaultBatchCases));
  cmd->add_option("-j,--jobs", a->jobs,
                  "Workers, each with its own machines (one per backend and mode), taking turns "
                  "at the batches; auto: one per CPU here")
      ->default_str("auto");
  cmd->add_flag("--no-pin", a->no_pin,
                "Let the kernel place the workers and their machines (default: with at most one "
                "worker per CPU, each worker's thread and machines share a CPU of their own)");
  cmd->add_flag("--json", a->json, "JSON lines: one per finding, the summary last");
  cmd->add_option("--log-every", a->log_every,
                  "Also write a plain progress line to stderr this often (30s, 1m), terminal or "
                  "not: cases, the rate over the last interval and overall, findings; for logs "
                  "of batch jobs and long campaigns");
  cmd->add_flag("--strict", a->strict, "Known deviations are findings too");
  cmd->callback([a, &ctx] {
    auto options = options_of(*a);
    const auto log_every = log_interval(*a);
    campaign::Progress progress(stderr, campaign::is_terminal(stderr));
    // The last logged line: when, and how many cases then (the rate over the interval
    // shows whether a long campaign keeps its pace).
    std::chrono::steady_clock::duration logged_at{};
    std::uint64_t logged_cases = 0;
    campaign::StopOnSignal stop;
    options.stop_requested = [] { return campaign::StopOnSignal::requested(); };
    options.on_progress = [&](std::uint64_t cases, std::uint64_t findings,
                              std::chrono::steady_clock::duration elapsed) {
      const double s = std::chrono::duration<double>(elapsed).count();
      if (log_every && elapsed - logged_at >= *log_every) {
        const double span = std::chrono::duration<double>(elapsed - logged_at).count();
        progress.clear();
        fmt::print(stderr, "fuzz: {} {} cases, {} over the last {}, {} overall, {} finding{}\n",
                   campaign::format_elapsed(elapsed), cases,
                   campaign::format_rate(static_cast<double>(cases - logged_cases) / span),
                   campaign::format_elapsed(elapsed - logged_at),
                   campaign::format_rate(s > 0 ? cases / s : 0), findings,
                   findings == 1 ? "" : "s");
        std::fflush(stderr);
        logged_at = elapsed;
        logged_cases = cases;
      }
      if (!progress.due()) return;
      progress.show(fmt::format("fuzz: {} cases, {}, {} finding{}, {}", cases,
                                campaign::format_rate(s > 0 ? cases / s : 0), findings,
                                findings == 1 ? "" : "s", campaign::format_elapsed(elapsed)));
    };
    const bool json = a->json;
    // A finding or an unconfirmed case as it comes: a JSON line, or its text; then flushed,
    // so that a campaign killed later loses none of it.
    const auto tell = [&](const nlohmann::json& j, const std::string& text) {
      progress.clear();
      if (json) {
        fmt::print("{}\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      } else {
        fmt::print("{}", text);
      }
      std::fflush(stdout);
    };
    options.on_finding = [&](const fuzz::Finding& f) {
      tell(f.to_json(),
           fmt::format("finding {}\n  case {} shrunk in {} runs to {} lines{}\n  observed: {}\n",
                       f.signature, f.case_number, f.shrink_runs, f.lines,
                       f.file ? ": " + f.file->string() : std::string(), f.observed));
    };
    options.on_unconfirmed = [&](const fuzz::Unconfirmed& u) {
      tell(u.to_json(),
           fmt::format("unconfirmed {}\n  case {} disagreed in its batch, not alone: no finding{}\n"
                       "  again: {}\n",
                       u.signature, u.case_number,
                       u.file ? "; report: " + u.file->string() : std::string(), u.rerun));
    };
    const auto summary = fuzz::run_campaign(options);
    progress.clear();
    if (json) {
      fmt::print("{}\n",
                 summary.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      fmt::print(
          "pagelab fuzz: seed {}, shard {}, profile {}, backend {}, {} worker{}, stopped by {}\n",
          summary.seed, summary.shard, summary.profile, fmt::join(summary.backends, ","),
          summary.jobs, summary.jobs == 1 ? "" : "s", summary.stopped_by);
      fmt::print("{}", summary.to_text());
    }
    if (!summary.findings.empty()) ctx.exit_code = 1;
  });
}

}  // namespace pagelab::cli

// `pagelab matrix`: the exhaustive permission matrix — every legal combination of entry
// flags, control bits, PKRU rights and accesses, in every paging mode, judged by the one
// judge (matrix/flag_space.hpp, matrix/matrix_run.hpp).
#include <fmt/core.h>
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/campaign/atomic_file.hpp"
#include "pagelab/campaign/progress.hpp"
#include "pagelab/campaign/shard.hpp"
#include "pagelab/campaign/stop_signal.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/matrix/flag_space.hpp"
#include "pagelab/matrix/matrix_run.hpp"

namespace pagelab::cli {

namespace {

struct MatrixArgs {
  std::string mode = "all";
  std::string sample = "1";
  std::string shard = "1/1";
  unsigned jobs = 1;
  std::string case_name;
  std::string export_path;
  bool json = false, strict = false, list = false, no_readback = false;
  std::string limit = "0";
  BackendChoice backend;
};

std::uint64_t parse_sample(const std::string& text) {
  auto t = text;
  if (t.rfind("1/", 0) == 0) t = t.substr(2);
  std::uint64_t n = 0;
  try {
    n = parse_u64(t, "--sample");
  } catch (const UsageError&) {
    throw UsageError(fmt::format("--sample '{}': expected 1/N or N (every N-th case), N >= 1",
                                 printable(text, 40)));
  }
  if (n == 0) throw UsageError("--sample: N must be at least 1");
  return n;
}

// How many cases of `count` the sample and shard select (before --limit).
std::uint64_t selected_count(std::uint64_t count, std::uint64_t sample, const campaign::Shard& s) {
  const auto sampled = (count + sample - 1) / sample;
  const auto k = s.index - 1;
  return sampled > k ? (sampled - k + s.count - 1) / s.count : 0;
}

// 19,169,280: counts a reader compares at a glance.
std::string grouped(std::uint64_t n) {
  auto digits = std::to_string(n);
  for (auto i = static_cast<std::ptrdiff_t>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<std::size_t>(i), ",");
  }
  return digits;
}

std::string mode_names() {
  std::vector<std::string> names;
  for (const auto& m : matrix::matrix_modes()) names.push_back(m.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

struct ModePlan {
  matrix::MatrixMode mode;
  std::uint64_t count = 0;
};

void print_mode_text(const ModePlan& plan, const matrix::ModeResult& r, const MatrixArgs& a,
                     unsigned workers) {
  fmt::print("{}: {}\n", plan.mode.name, plan.mode.description);
  if (r.skipped) {
    fmt::print("  skipped: {}\n\n", r.skipped->c_str());
    return;
  }
  for (const auto& rep : r.reports) {
    fmt::print("  FAILED case #{}: {}\n", rep.number, rep.name);
    std::string body = rep.report;
    std::string indented;
    std::size_t start = 0;
    while (start < body.size()) {
      const auto nl = body.find('\n', start);
      const auto line = body.substr(start, nl == std::string::npos ? nl : nl - start);
      indented += "    " + line + "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    fmt::print("{}", indented);
    fmt::print("    replay: pagelab matrix --case '{}'\n", rep.name);
  }
  if (r.failures_not_kept != 0) {
    fmt::print("  ({} more failing cases not printed)\n", r.failures_not_kept);
  }
  const bool only = !a.case_name.empty();
  fmt::print("  cases        {} run{}\n", grouped(r.ran),
             only || plan.count == 0 ? "" : fmt::format(" of {} in the mode", grouped(plan.count)));
  fmt::print("  agreed       {}\n", grouped(r.agreed));
  if (r.deviations.empty()) {
    fmt::print("  known deviations  0\n");
  } else {
    for (const auto& [id, n] : r.deviations) {
      fmt::print("  known deviation   {}: {}\n", id, grouped(n));
    }
  }
  fmt::print("  unexplained  {}\n", grouped(r.unexplained));
  fmt::print("  skipped      {}\n", grouped(r.skipped_cases));
  for (const auto& [why, n] : r.skip_reasons) fmt::print("    {}: {}\n", why, grouped(n));
  // Per core of CPU time, pagelab's and the backend's (QEMU's) together: what the same
  // cases cost a machine, however many cores ran them at once.
  fmt::print(
      "  speed        {:.2f} s wall, {:.2f} s CPU, {} cases/s per core ({} worker{}), {:.0f} "
      "cases per VM exit, {:.2f} ops per case, {:.3f} control writes per case\n",
      r.seconds, r.cpu_seconds,
      grouped(r.cpu_seconds > 0 ? static_cast<std::uint64_t>(r.ran / r.cpu_seconds) : 0), workers,
      workers == 1 ? "" : "s",
      r.exits != 0 ? static_cast<double>(r.ran) / static_cast<double>(r.exits) : 0.0,
      r.ran != 0 ? static_cast<double>(r.ops) / static_cast<double>(r.ran) : 0.0,
      r.ran != 0 ? static_cast<double>(r.control_writes) / static_cast<double>(r.ran) : 0.0);
  if (r.stopped) fmt::print("  stopped by a signal: the counts above are what ran\n");
  fmt::print("\n");
}

nlohmann::json mode_json(const ModePlan& plan, const matrix::ModeResult& r, unsigned workers) {
  nlohmann::json j;
  j["schema"] = "pagelab/1";
  j["kind"] = "mode";
  j["mode"] = plan.mode.name;
  if (r.skipped) {
    j["verdict"] = "skipped";
    j["reason"] = *r.skipped;
    return j;
  }
  if (plan.count != 0) j["cases_in_mode"] = plan.count;
  j["cases"] = r.ran;
  j["agreed"] = r.agreed;
  j["known_deviations"] = nlohmann::json::object();
  for (const auto& [id, n] : r.deviations) j["known_deviations"][id] = n;
  j["unexplained"] = r.unexplained;
  j["skipped"] = r.skipped_cases;
  auto reasons = nlohmann::json::array();
  for (const auto& [why, n] : r.skip_reasons) reasons.push_back({{"reason", why}, {"cases", n}});
  j["skip_reasons"] = reasons;
  j["seconds"] = r.seconds;
  j["workers"] = workers;
  j["vm_exits"] = r.exits;
  j["ops"] = r.ops;
  j["control_writes"] = r.control_writes;
  j["cpu_seconds"] = r.cpu_seconds;
  j["cases_per_second_per_core"] = r.cpu_seconds > 0 ? r.ran / r.cpu_seconds : 0.0;
  j["cases_per_vm_exit"] = r.exits != 0 ? static_cast<double>(r.ran) / r.exits : 0.0;
  j["stopped"] = r.stopped;
  j["verdict"] = r.unexplained != 0 ? "failed" : "passed";
  return j;
}

nlohmann::json case_json(const matrix::MatrixMode& mode, const matrix::CaseReport& rep) {
  nlohmann::json j;
  j["schema"] = "pagelab/1";
  j["kind"] = "case";
  j["mode"] = mode.name;
  j["number"] = rep.number;
  j["case"] = rep.name;
  j["verdict"] = std::string(matrix::to_string(rep.verdict));
  if (!rep.deviation.empty()) j["deviation"] = rep.deviation;
  j["observed"] = rep.observed;
  j["report"] = rep.report;
  return j;
}

void list_space(const std::vector<ModePlan>& plans) {
  for (const auto& p : plans) {
    const matrix::FlagSpace space(p.mode);
    fmt::print("{}: {} — {} cases ({} assignments before the rules)\n", p.mode.name,
               p.mode.description, grouped(p.count), grouped(space.assignments()));
    for (const auto& d : space.dimensions()) {
      fmt::print("  {:<10} {:>3} values: {}\n", d.name, d.values.size(), fmt::join(d.labels, " "));
    }
  }
  if (!plans.empty()) {
    fmt::print("rules (a case is legal when none forbids it):\n");
    const matrix::FlagSpace space(plans.front().mode);
    for (const auto& r : space.rules()) fmt::print("  {}: {}\n", r.name, r.reason);
  }
}

void run_matrix(const MatrixArgs& a, Context& ctx) {
  // Everything the user said is checked before anything runs.
  std::vector<ModePlan> plans;
  std::optional<matrix::Setup> only;
  if (!a.case_name.empty()) {
    const auto first = a.case_name.substr(0, a.case_name.find(' '));
    const auto modes = matrix::select_modes(first);
    if (modes.size() != 1) {
      throw UsageError(fmt::format("--case '{}': a case name starts with its mode (one of: {})",
                                   printable(a.case_name, 200), mode_names()));
    }
    const matrix::FlagSpace space(modes.front());
    std::string error;
    only = space.parse(a.case_name, &error);
    if (!only) {
      throw UsageError(
          fmt::format("--case '{}' names no case: {}", printable(a.case_name, 200), error));
    }
    plans.push_back({modes.front(), 0});
  } else {
    const auto modes = matrix::select_modes(a.mode);
    if (modes.empty()) {
      throw UsageError(
          fmt::format("unknown mode '{}' (one of: {}; groups: 4level, pae, 32bit, all)",
                      printable(a.mode, 40), mode_names()));
    }
    for (const auto& m : modes) plans.push_back({m, 0});
  }
  if (!a.export_path.empty() && a.case_name.empty()) {
    throw UsageError("--export FILE.pgl writes one case: give it with --case NAME");
  }
  const auto sample = parse_sample(a.sample);
  campaign::Shard shard;
  try {
    shard = campaign::parse_shard(a.shard);
  } catch (const std::invalid_argument& e) {
    throw UsageError(fmt::format("--shard: {}", e.what()));
  }
  if (a.jobs == 0 || a.jobs > 64) throw UsageError("-j: 1 to 64 workers");
  const auto limit = parse_u64(a.limit, "--limit");
  const auto kind = a.backend.kind();
  if (!only) {
    // A mode has a selected case when it has more than the first selected case's number
    // of cases: counting that far is enough (the whole count comes with the run).
    const std::uint64_t first_selected = sample * (shard.index - 1);
    std::uint64_t total_selected = 0;
    for (auto& p : plans) {
      const auto enough = a.list ? ~std::uint64_t{0} : first_selected + 1;
      p.count = matrix::FlagSpace(p.mode).count(enough);
      total_selected += selected_count(p.count, sample, shard);
    }
    if (total_selected == 0) {
      throw UsageError(fmt::format("the selection is empty: sample 1/{} and shard {} leave no case",
                                   sample, shard.describe()));
    }
  }
  if (a.list) {
    list_space(plans);
    return;
  }
  const unsigned workers = only ? 1 : a.jobs;

  lab::LabOptions lab_options;
  lab_options.backend = kind;
  // Each worker makes its machine in its own thread: a QEMU child is tied to the thread
  // that started it (it dies with it).
  unsigned maxphyaddr = 0;
  std::mutex maxphyaddr_mutex;

  campaign::StopOnSignal stop;
  campaign::Progress progress(stderr, campaign::is_terminal(stderr));
  std::mutex progress_mutex;
  bool failed = false;
  for (const auto& plan : plans) {
    if (campaign::StopOnSignal::requested()) break;
    std::atomic<std::uint64_t> done{0};
    std::vector<std::uint64_t> done_by(workers, 0);
    std::vector<matrix::ModeResult> results(workers);
    std::vector<std::exception_ptr> errors(workers);
    const auto started = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (unsigned w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        matrix::RunOptions ro;
        ro.selection.sample = sample;
        ro.selection.shard = shard;
        ro.selection.worker = w;
        ro.selection.workers = workers;
        ro.selection.limit = limit == 0 ? 0 : (limit + workers - 1) / workers;
        ro.selection.only = only;
        ro.strict = a.strict;
        ro.ad_readback = !a.no_readback;
        ro.on_batch = [&, w](std::uint64_t n) {
          done += n - done_by[w];
          done_by[w] = n;
          if (progress.enabled()) {
            std::lock_guard lock(progress_mutex);
            if (progress.due()) {
              const auto el = std::chrono::steady_clock::now() - started;
              const double s = std::chrono::duration<double>(el).count();
              progress.show(fmt::format("{}: {} cases, {}, {}", plan.mode.name, grouped(done),
                                        campaign::format_rate(s > 0 ? done / s : 0),
                                        campaign::format_elapsed(el)));
            }
          }
          return !campaign::StopOnSignal::requested();
        };
        try {
          lab::Lab lab(lab_options);
          {
            std::lock_guard lock(maxphyaddr_mutex);
            maxphyaddr = lab.cpu().paging_features().maxphyaddr;
          }
          results[w] = matrix::run_mode(lab, plan.mode, ro);
        } catch (...) {
          errors[w] = std::current_exception();
        }
      });
    }
    for (auto& t : threads) t.join();
    progress.clear();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    matrix::ModeResult merged = results.front();
    for (unsigned w = 1; w < workers; ++w) merged.merge(results[w]);
    // The workers' enumeration stopped at --limit: count the mode now (not after a
    // signal, which wants the summary at once, nor for a mode that did not run).
    auto counted = plan;
    counted.count = merged.cases_in_mode;
    if (counted.count == 0 && !only && !merged.skipped && !merged.stopped) {
      counted.count = matrix::FlagSpace(plan.mode).count();
    }
    if (merged.unexplained != 0) failed = true;
    if (a.json) {
      for (const auto& rep : merged.reports) {
        fmt::print("{}\n", case_json(plan.mode, rep)
                               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      }
      fmt::print("{}\n", mode_json(counted, merged, workers)
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    } else {
      print_mode_text(counted, merged, a, workers);
    }
    if (only && !a.export_path.empty()) {
      const matrix::FlagSpace space(plan.mode);
      const auto number = space.number_of(*only).value_or(0);
      const auto observed =
          merged.reports.empty() ? std::string() : merged.reports.front().observed;
      campaign::write_file_atomically(
          a.export_path, matrix::export_case(space, *only, number, maxphyaddr, observed));
      if (!a.json) fmt::print("exported case #{} to {}\n", number, a.export_path);
    }
  }
  if (failed) {
    ctx.exit_code = 1;
  } else if (campaign::StopOnSignal::requested()) {
    ctx.exit_code = 130;  // interrupted: what ran passed, the rest did not run
  }
}

}  // namespace

void add_matrix(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "matrix",
      "The permission matrix: every legal combination of entry flags (each level), control bits "
      "(CR0.WP, CR4.SMEP/SMAP/PKE, EFER.NXE), PKRU rights and accesses (read/write/fetch, "
      "CPL0/CPL3, RFLAGS.AC), in every paging mode, each access judged by the one judge, A/D "
      "read back at every level. Exit status: 0 no unexplained case, 1 a case failed, 2 bad "
      "input, 130 stopped by SIGINT (after printing what ran)");
  auto a = std::make_shared<MatrixArgs>();
  add_backend_option(*cmd, a->backend);
  cmd->add_option("--mode", a->mode,
                  "4level-4k, 4level-2m, 4level-1g, 5level, pae-4k, pae-2m, 32bit-4k, 32bit-4m, "
                  "or a group: 4level, pae, 32bit, all")
      ->default_str("all");
  cmd->add_option("--sample", a->sample,
                  "Run every N-th case (1/N or N; deterministic: case numbers divisible by N)")
      ->default_str("1");
  cmd->add_option("--shard", a->shard,
                  "K/N: this machine's share of the (sampled) cases; auto: from the Slurm or "
                  "Kubernetes array index")
      ->default_str("1/1");
  cmd->add_option("-j,--jobs", a->jobs, "Workers, each with its own machine, on disjoint shares")
      ->default_str("1");
  cmd->add_option("--case", a->case_name,
                  "Replay one case alone, by the name a report prints (quote it)");
  cmd->add_option("--export", a->export_path,
                  "With --case: write the case as a .pgl scenario that `pagelab run` replays");
  cmd->add_option("--limit", a->limit, "Run at most N of the selected cases per mode (0: all)")
      ->default_str("0");
  cmd->add_flag("--json", a->json,
                "JSON lines: one per failing case, one summary per mode (schema pagelab/1)");
  cmd->add_flag("--strict", a->strict, "Known platform deviations fail too");
  cmd->add_flag("--no-readback", a->no_readback,
                "Check A/D only where each batch ends (the engine's read-back), not per case");
  cmd->add_flag("--list", a->list,
                "Print the dimensions, their values, the legality rules and the case counts; run "
                "nothing");
  cmd->callback([a, &ctx] { run_matrix(*a, ctx); });
}

}  // namespace pagelab::cli

// `pagelab run FILE[:LINE]...`: runs scenario files on a backend (KVM or QEMU TCG), on
// every backend at once (--backend all: oracle vs KVM vs QEMU, case by case), or with
// --oracle-only on the model alone, and reports every access and expectation — as
// text, JSON (docs/json.md), TAP13 or JUnit XML; -j N runs files in parallel.
#include <fmt/core.h>

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "backend_option.hpp"
#include "case_report.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/lab/report/json.hpp"
#include "pagelab/lab/scenario/engine_machine.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_compare.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"
#include "run_targets.hpp"

namespace pagelab::cli {

namespace {

namespace sc = lab::scenario;
namespace rep = lab::report;

struct RunOptions {
  std::vector<std::string> files;
  bool json = false, tap = false, oracle_only = false, verbose = false, strict = false;
  std::string junit;
  unsigned jobs = 1;
  BackendChoice backend;
};

std::string slot_text(const sc::BackendSlot& s) {
  return s.unavailable ? fmt::format("{} unavailable: {}", s.name, *s.unavailable)
                       : fmt::format("{} ({})", s.name, s.description);
}

// Exit status when no backend could run under auto/all: the oracle judged every case,
// but a run that touched no CPU must not look green.
constexpr int NoBackendExit = 4;

int no_backend(bool quiet) {
  if (!quiet) {
    fmt::print(stderr,
               "pagelab: no backend could run here: nothing ran on a CPU (exit status {}; "
               "--oracle-only judges without one)\n",
               NoBackendExit);
  }
  return NoBackendExit;
}

// A run-time error in one file: the others still run and are reported, the JSON holds
// an "error" object, and the exit status is the first error's.
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
};

// Bad input found only when it runs is still bad input (exit 2, FILE:LINE:COL); any
// other failure names the file it happened in.
RunError run_error(const std::exception& e, const sc::Scenario& s) {
  if (const auto* se = dynamic_cast<const sc::ScenarioError*>(&e)) {
    return RunError{printable(se->what()), se->where(), 2};
  }
  return RunError{printable(fmt::format("{}: error: {}", s.file, e.what())), std::nullopt, 1};
}

// Runs work(i) for every i on up to `jobs` threads and calls emit(i) on this thread in
// index order, each as soon as it and everything before it is done.
template <typename Work, typename Emit>
void run_in_order(std::size_t n, unsigned jobs, Work work, Emit emit) {
  if (jobs <= 1 || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) {
      work(i);
      emit(i);
    }
    return;
  }
  std::mutex m;
  std::condition_variable cv;
  std::vector<bool> done(n, false);
  std::size_t next = 0;
  std::vector<std::jthread> workers;
  for (unsigned w = 0; w < std::min<std::size_t>(jobs, n); ++w) {
    workers.emplace_back([&] {
      for (;;) {
        std::size_t i;
        {
          std::lock_guard lock(m);
          if (next == n) return;
          i = next++;
        }
        work(i);
        {
          std::lock_guard lock(m);
          done[i] = true;
        }
        cv.notify_all();
      }
    });
  }
  for (std::size_t i = 0; i < n; ++i) {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return done[i]; });
    lock.unlock();
    emit(i);
  }
}

std::string reproducer(const std::string& file, unsigned line, std::string_view backend) {
  return fmt::format("pagelab run {}:{}{}", file, line, backend);
}

// The --backend (or --oracle-only) argument that replays a case where it ran.
std::string backend_argument(const std::optional<sc::BackendSlot>& slot) {
  if (!slot) return " --oracle-only";
  return slot->kind == lab::BackendKind::Qemu ? " --backend qemu" : " --backend kvm";
}

rep::CaseVerdict case_verdict_of(std::string_view name) {
  return name == "passed"    ? rep::CaseVerdict::Passed
         : name == "failed"  ? rep::CaseVerdict::Failed
         : name == "skipped" ? rep::CaseVerdict::Skipped
                             : rep::CaseVerdict::KnownDeviation;
}

// TAP / JUnit lines for one file run on one backend.
void add_case_lines(std::vector<CaseLine>& out, const sc::ScenarioResult& r,
                    std::string_view backend) {
  for (const auto& a : r.accesses) {
    CaseLine c;
    c.suite = r.file;
    c.name = fmt::format("{}:{} {}", a.where.file, a.where.line, a.text);
    c.verdict = case_verdict_of(sc::verdict_name(a));
    c.reason = a.reason;
    c.deviation = a.deviation;
    for (const auto& ch : a.checks) {
      if (!ch.passed)
        c.details += fmt::format("{}:{}: {}\n{}", ch.where.file, ch.where.line, ch.text, ch.diff);
    }
    if (c.verdict == rep::CaseVerdict::Failed && !a.observed.empty()) {
      c.details += fmt::format("observed: {}\n", a.observed);
    }
    c.reproducer = reproducer(a.where.file, a.where.line, backend);
    out.push_back(std::move(c));
  }
  // A file that failed with no access failing (its backend never started).
  if (r.verdict == sc::Verdict::Failed && r.count(sc::Verdict::Failed) == 0) {
    out.push_back({r.file, r.file, rep::CaseVerdict::Failed, r.reason, "", "", ""});
  }
}

void add_case_lines(std::vector<CaseLine>& out, const sc::ScenarioComparison& cmp) {
  for (const auto& k : cmp.cases) {
    CaseLine c;
    c.suite = cmp.file;
    c.name = fmt::format("{}:{} {}", k.where.file, k.where.line, k.access);
    c.verdict = sc::case_verdict(k.classification);
    c.reason = k.detail;
    for (const auto& b : k.backends) {
      if (!b.deviation.empty() && c.deviation.empty()) c.deviation = b.deviation;
      if (b.verdict == sc::Verdict::Failed) {
        c.details += fmt::format("{}: {}\n", b.backend, b.observed.empty() ? b.reason : b.observed);
        for (const auto& ch : b.failed_checks) {
          c.details += fmt::format("{} {}:{}: {}\n{}", b.backend, ch.where.file, ch.where.line,
                                   ch.text, ch.diff);
        }
      }
    }
    c.reproducer = reproducer(k.where.file, k.where.line, " --backend all");
    out.push_back(std::move(c));
  }
}

void add_error_line(std::vector<CaseLine>& out, const std::string& file, const RunError& e) {
  out.push_back({file, file, rep::CaseVerdict::Failed, e.message, "", "", ""});
}

// Where the readable report goes: stdout unless TAP or JSON own it.
bool text_output(const RunOptions& o) {
  return !o.json && !o.tap;
}

// Prints the machine-readable forms and returns the exit status.
int finish(const RunOptions& opts, nlohmann::json j, const std::vector<CaseLine>& lines,
           const std::optional<RunError>& error, int status) {
  if (!opts.junit.empty()) {
    try {
      write_junit(opts.junit, "pagelab run", lines);
    } catch (const std::exception& e) {
      fmt::print(stderr, "pagelab: --junit: {}\n", e.what());
      status = status == 0 ? 1 : status;
    }
  }
  if (opts.json) {
    if (error) j["error"] = error->json();
    j["exit_status"] = status;
    print_json(j);
  } else if (opts.tap) {
    fmt::print("{}", tap_document(lines));
  }
  if (error && !opts.json) fmt::print(stderr, "pagelab: {}\n", error->message);
  return status;
}

// --backend all: every scenario on every backend available here, case by case.
int run_all(const RunOptions& opts, const std::vector<RunTarget>& targets,
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
  if (text_output(opts)) {
    for (const auto& s : slots) fmt::print("backend {}\n", slot_text(s));
    fmt::print("\n");
  }
  struct Done {
    std::optional<sc::ScenarioComparison> cmp;
    std::optional<RunError> error;
  };
  std::vector<Done> done(targets.size());
  std::map<sc::CaseClass, unsigned> counts;
  rep::VerdictCounts verdicts;
  nlohmann::json deviations = nlohmann::json::object();
  unsigned cases = 0, partial = 0;
  nlohmann::json all = nlohmann::json::array();
  std::vector<CaseLine> lines;
  std::optional<RunError> error;
  run_in_order(
      targets.size(), opts.jobs,
      [&](std::size_t i) {
        try {
          auto cmp = sc::compare_scenario(targets[i].scenario, slots, known);
          if (targets[i].line) keep_only_line(cmp, *targets[i].line);
          done[i].cmp = std::move(cmp);
        } catch (const std::exception& e) {
          done[i].error = run_error(e, targets[i].scenario);
        }
      },
      [&](std::size_t i) {
        const auto& d = done[i];
        if (d.error) {
          if (!error) error = d.error;
          add_error_line(lines, targets[i].scenario.file, *d.error);
          all.push_back({{"file", targets[i].scenario.file},
                         {"verdict", "failed"},
                         {"error", d.error->json()}});
          if (text_output(opts))
            fmt::print("== {}: {}\n\n", targets[i].scenario.file, d.error->message);
          return;
        }
        const auto& cmp = *d.cmp;
        for (const auto& c : cmp.cases) {
          ++counts[c.classification];
          verdicts.add(sc::case_verdict(c.classification));
        }
        cases += static_cast<unsigned>(cmp.cases.size());
        partial += cmp.partial();
        add_case_lines(lines, cmp);
        if (opts.json) {
          auto j = cmp.to_json();
          for (const auto& [name, n] : j["known_deviations"].items()) {
            deviations[name] = deviations.value(name, 0) + n.get<unsigned>();
          }
          all.push_back(std::move(j));
        } else if (text_output(opts)) {
          fmt::print("{}\n", sc::format_comparison(cmp, opts.verbose));
        }
      });
  const unsigned failed = counts[sc::CaseClass::Failed];
  if (text_output(opts)) {
    std::string ran_text;
    for (const auto& n : ran) ran_text += (ran_text.empty() ? "" : " vs ") + n;
    fmt::print(
        "{} cases in {} file{}, oracle vs {}: {} agree, {} differ (both allowed), {} known "
        "deviations, {} failed, {} skipped{}\n",
        cases, targets.size(), targets.size() == 1 ? "" : "s",
        ran_text.empty() ? "no backend" : ran_text, counts[sc::CaseClass::Agree],
        counts[sc::CaseClass::DifferAllowed], counts[sc::CaseClass::KnownDeviation], failed,
        counts[sc::CaseClass::Skipped],
        partial == 0 ? "" : fmt::format(" ({} ran on only some backends)", partial));
  }
  int status = error         ? error->exit_code
               : failed > 0  ? 1
               : ran.empty() ? no_backend(!text_output(opts))
                             : 0;
  auto j = rep::document("run");
  j["backend"] = "all";
  j["backends"] = slots_json;
  j["files"] = targets.size();
  j["counts"] = verdicts.json();
  j["agreement"] = {{"agree", counts[sc::CaseClass::Agree]},
                    {"differ-allowed", counts[sc::CaseClass::DifferAllowed]},
                    {"partial", partial}};
  j["known_deviations"] = deviations;
  if (ran.empty()) j["no_backend"] = true;
  j["scenarios"] = std::move(all);
  return finish(opts, std::move(j), lines, error, status);
}

// Prints each access as soon as it is judged and counts it: a file of a million
// accesses then needs no more memory than one of a thousand. Only for the readable
// report of one file at a time (JSON, TAP, JUnit, -j and FILE:LINE keep the results).
class PrintingSink : public sc::AccessSink {
 public:
  explicit PrintingSink(bool verbose) : verbose_(verbose) {}
  void on_access(const sc::ScenarioResult& so_far, const sc::AccessResult& a) override {
    if (!titled_) fmt::print("{}", sc::format_report_title(so_far));
    titled_ = true;
    fmt::print("{}", sc::format_access(so_far, a, verbose_));
    counts.add(case_verdict_of(sc::verdict_name(a)));
  }
  void finish(const sc::ScenarioResult& r) const {
    if (!titled_) fmt::print("{}", sc::format_report_title(r));
    fmt::print("{}\n", sc::format_report_end(r));
  }
  rep::VerdictCounts counts;

 private:
  bool verbose_;
  bool titled_ = false;
};

// One backend (or the oracle alone): the detailed report per scenario.
int run_one(const RunOptions& opts, const std::vector<RunTarget>& targets,
            const std::vector<lab::AccessDeviation>& known) {
  std::optional<sc::BackendSlot> slot;
  if (!opts.oracle_only) slot = sc::backend_slot(opts.backend.kind_to_run());
  const std::string backend = slot ? slot->name : "oracle";
  struct Done {
    std::optional<sc::ScenarioResult> result;
    std::optional<RunError> error;
    std::unique_ptr<PrintingSink> printed;  // the report went out while it ran
  };
  std::vector<Done> done(targets.size());
  const bool stream =
      text_output(opts) && opts.junit.empty() && opts.jobs <= 1 && !(slot && slot->unavailable);
  auto run_file = [&](std::size_t i) {
    const auto& s = targets[i].scenario;
    sc::ScenarioResult r;
    if (stream && !targets[i].line) done[i].printed = std::make_unique<PrintingSink>(opts.verbose);
    // A file kept as its head is read again as it runs: streamed, or loaded whole.
    auto run = [&](sc::Machine* machine, sc::AccessSink* sink) {
      if (!targets[i].head_only) return sc::run_scenario(s, machine, known, sink);
      if (sink != nullptr) return sc::run_scenario_file(s, machine, known, sink);
      return sc::run_scenario(sc::load_scenario(s.file), machine, known, nullptr);
    };
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
          r = run(nullptr, nullptr);
          r.backend = slot->name;
          r.verdict = sc::Verdict::Failed;
          r.reason = fmt::format("{} could not start: {}", slot->name, e.what());
          for (auto& a : r.accesses) {
            a.verdict = sc::Verdict::Skipped;
            a.reason = r.reason;
          }
        }
      }
      if (machine || !slot || slot->unavailable) {
        r = run(machine.get(), done[i].printed.get());
      } else {
        done[i].printed.reset();  // it could not start: the report says so at once
      }
    } catch (const std::exception& e) {
      done[i].error = run_error(e, s);
      return;
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
    if (targets[i].line) keep_only_line(r, *targets[i].line);
    done[i].result = std::move(r);
  };
  rep::VerdictCounts verdicts;
  nlohmann::json deviations = nlohmann::json::object();
  nlohmann::json all = nlohmann::json::array();
  std::vector<CaseLine> lines;
  std::optional<RunError> error;
  unsigned failed_files = 0;
  run_in_order(targets.size(), opts.jobs, run_file, [&](std::size_t i) {
    const auto& d = done[i];
    if (d.error) {
      if (!error) error = d.error;
      add_error_line(lines, targets[i].scenario.file, *d.error);
      all.push_back(
          {{"file", targets[i].scenario.file}, {"verdict", "failed"}, {"error", d.error->json()}});
      if (text_output(opts))
        fmt::print("== {}: {}\n\n", targets[i].scenario.file, d.error->message);
      return;
    }
    const auto& r = *d.result;
    if (d.printed) {
      verdicts.passed += d.printed->counts.passed;
      verdicts.failed += d.printed->counts.failed;
      verdicts.skipped += d.printed->counts.skipped;
      verdicts.known_deviation += d.printed->counts.known_deviation;
    }
    for (const auto& a : r.accesses) {
      verdicts.add(case_verdict_of(sc::verdict_name(a)));
      if (sc::verdict_name(a) == "known-deviation") {
        deviations[a.deviation] = deviations.value(a.deviation, 0) + 1;
      }
    }
    // A scenario that failed without a failed access (its backend never started).
    if (r.verdict == sc::Verdict::Failed && r.count(sc::Verdict::Failed) == 0) ++failed_files;
    add_case_lines(lines, r, backend_argument(slot));
    if (opts.json) {
      all.push_back(r.to_json());
    } else if (d.printed) {
      d.printed->finish(r);
    } else if (text_output(opts)) {
      fmt::print("{}\n", sc::format_report(r, opts.verbose));
    }
  });
  verdicts.failed += failed_files;
  if (text_output(opts)) {
    fmt::print("{} passed, {} failed, {} skipped{} ({} file{}, on {})\n", verdicts.passed,
               verdicts.failed, verdicts.skipped,
               verdicts.known_deviation == 0
                   ? ""
                   : fmt::format(", {} known deviation{}", verdicts.known_deviation,
                                 verdicts.known_deviation == 1 ? "" : "s"),
               targets.size(), targets.size() == 1 ? "" : "s", backend);
  }
  const bool none = slot && slot->unavailable;
  int status = error                 ? error->exit_code
               : verdicts.failed > 0 ? 1
               : none                ? no_backend(!text_output(opts))
                                     : 0;
  auto j = rep::document("run");
  j["backend"] = backend;
  if (none) {
    j["unavailable"] = *slot->unavailable;
    j["no_backend"] = true;
  }
  j["files"] = targets.size();
  j["counts"] = verdicts.json();
  j["known_deviations"] = deviations;
  j["scenarios"] = std::move(all);
  return finish(opts, std::move(j), lines, error, status);
}

}  // namespace

void add_run(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "run", "Run scenario files (.pgl) on the CPU, every access checked against the oracle");
  cmd->footer(lab::scenario::scenario_help_text() +
              "\n\nFILE:LINE runs one case: the access on that line (or the access an `expect` "
              "on that line\nbelongs to), after every statement before it (earlier accesses run "
              "unreported, without\ntheir expectations, so the case sees the same history as "
              "in the whole file)."
              "\n\nWith --backend all every scenario runs on each backend available here (KVM "
              "where /dev/kvm works,\nQEMU TCG where installed) and each access is classified: "
              "agree; differ, both allowed;\nknown deviation (a named platform departure from the "
              "architecture, reported, not failed);\nor FAILED (an unknown departure, an "
              "expectation not met, a scenario bug)."
              "\n\nOutput: the readable report; --json (docs/json.md, schema pagelab/1); --tap "
              "(TAP13: a known\ndeviation is `not ok ... # TODO known deviation NAME`, a skip "
              "`ok ... # SKIP reason`);\n--junit FILE (JUnit XML, with any of the others)."
              "\n\nExit status: 0 every case passed, was skipped with a reason or is a known "
              "deviation;\n1 a case failed (also: the guest stopped or QEMU exited during it; "
              "the rest of that file is\nskipped and the next file gets a fresh machine); 2 a "
              "scenario file is malformed (FILE:LINE:COL: message),\nis a directory, is empty or "
              "has no access, or the backend asked for with --backend cannot\nstart here; 4 no "
              "backend could run here (auto/all): the oracle judged every case, nothing\nran on a "
              "CPU. Every file is checked before any runs; a run-time error in one file does not "
              "stop\nthe others, and the report holds every file that ran.");
  auto opts = std::make_shared<RunOptions>();
  cmd->add_option("files", opts->files, "Scenario files, or FILE:LINE for one case")->required();
  cmd->add_flag("--json", opts->json, "Print JSON (docs/json.md) instead of the readable report");
  cmd->add_flag("--tap", opts->tap, "Print TAP13, one test point per case");
  cmd->add_option("--junit", opts->junit, "Also write JUnit XML to this file");
  cmd->add_option("-j,--jobs", opts->jobs,
                  "Run this many files at once (one machine each); output stays in input order")
      ->check(CLI::Range(1U, 256U));
  cmd->add_flag("--oracle-only", opts->oracle_only,
                "Judge the scenarios with the model alone (no CPU, no backend needed)");
  cmd->add_flag("-v,--verbose", opts->verbose,
                "Also list the expectations that passed, and the details of known deviations");
  cmd->add_flag("--strict", opts->strict,
                "Known platform deviations fail too (as if the list of known deviations were "
                "empty)");
  add_backend_option(*cmd, opts->backend, /*allow_all=*/true);
  auto* backend_option = cmd->get_option("--backend");
  cmd->callback([opts, backend_option, &ctx] {
    (void)opts->backend.kind();  // a bad --backend is reported before anything is parsed
    if (opts->json && opts->tap)
      throw UsageError("--json and --tap both print to stdout: choose one");
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
    // A readable report of one file at a time is printed as the file runs, which needs
    // only each file's head in memory (run_one: PrintingSink).
    const bool stream = text_output(*opts) && opts->junit.empty() && opts->jobs <= 1 &&
                        !(opts->backend.all() && !opts->oracle_only);
    const auto targets = load_run_targets(opts->files, stream);
    static const std::vector<lab::AccessDeviation> none;
    const auto& known = opts->strict ? none : lab::known_access_deviations();
    ctx.exit_code = opts->backend.all() && !opts->oracle_only ? run_all(*opts, targets, known)
                                                              : run_one(*opts, targets, known);
  });
}

}  // namespace pagelab::cli

#include "pagelab/fuzz/campaign.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <memory>
#include <set>
#include <sstream>

#include "pagelab/campaign/affinity.hpp"
#include "pagelab/campaign/atomic_file.hpp"
#include "pagelab/fuzz/runner.hpp"
#include "pagelab/fuzz/shrink.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/paging/walker.hpp"
#include "workers.hpp"

namespace pagelab::fuzz {

using Clock = std::chrono::steady_clock;
using paging::PagingMode;

namespace {

const std::vector<PagingMode> EveryMode = {PagingMode::Bits32, PagingMode::Pae, PagingMode::Level4,
                                           PagingMode::Level5};

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char ch : s) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

std::optional<PagingMode> mode_named(const std::string& name) {
  for (const auto m : EveryMode) {
    if (mode_keyword(m) == name) return m;
  }
  return std::nullopt;
}

nlohmann::json Finding::to_json() const {
  nlohmann::json j = {{"schema", "pagelab/1"},
                      {"type", "finding"},
                      {"verdict", "failed"},
                      {"signature", signature},
                      {"kind", kind},
                      {"backend", backend},
                      {"mode", mode_keyword(mode)},
                      {"level", level},
                      {"rule", rule},
                      {"seed", seed},
                      {"case", case_number},
                      {"observed", observed},
                      {"allowed", allowed},
                      {"lines", lines},
                      {"shrink_runs", shrink_runs},
                      {"reproducer", reproducer}};
  j["file"] = file ? nlohmann::json(file->string()) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json Unconfirmed::to_json() const {
  nlohmann::json j = {
      {"schema", "pagelab/1"}, {"type", "unconfirmed"},      {"signature", signature},
      {"backend", backend},    {"mode", mode_keyword(mode)}, {"seed", seed},
      {"case", case_number},   {"batch_first", batch_first}, {"rerun", rerun},
      {"report", report},      {"case_text", case_text}};
  j["file"] = file ? nlohmann::json(file->string()) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json CampaignSummary::to_json() const {
  nlohmann::json modes_json = nlohmann::json::object();
  for (const auto& [backend, per_mode] : modes) {
    for (const auto& [mode, s] : per_mode) {
      nlohmann::json m = {
          {"cases", s.cases},
          {"failed", s.failed},
          {"known_deviation", s.known},
          {"skipped", s.skipped},
          {"accesses", s.accesses},
          {"vm_exits", s.exits},
          {"seconds", s.seconds},
          {"cases_per_second", s.seconds > 0 ? s.cases / s.seconds : 0.0},
          {"accesses_per_exit", s.exits > 0 ? static_cast<double>(s.accesses) / s.exits : 0.0},
          {"skip_reasons", s.skip_reasons}};
      if (s.unavailable) m["unavailable"] = *s.unavailable;
      modes_json[backend][mode] = m;
    }
  }
  return {{"schema", "pagelab/1"},
          {"type", "summary"},
          {"seed", seed},
          {"shard", shard},
          {"profile", profile},
          {"backends", backends},
          {"jobs", jobs},
          {"cases", cases},
          {"seconds", seconds},
          {"cases_per_second", seconds > 0 ? cases / seconds : 0.0},
          {"accesses", accesses},
          {"vm_exits", exits},
          {"accesses_per_exit", exits > 0 ? static_cast<double>(accesses) / exits : 0.0},
          {"findings", findings.size()},
          {"finding_signatures", findings},
          {"known_deviations", known_deviations},
          {"backends_differ_allowed", backends_differ_allowed},
          {"unconfirmed", unconfirmed},
          {"stopped_by", stopped_by},
          {"modes", modes_json},
          {"notes", notes}};
}

std::string CampaignSummary::to_text() const {
  std::string out;
  out +=
      fmt::format("{:<10} {:<7} {:>9} {:>10} {:>10} {:>9} {:>7} {:>6} {:>8}\n", "backend", "mode",
                  "cases", "cases/s", "accesses", "acc/exit", "failed", "known", "skipped");
  for (const auto& [backend, per_mode] : modes) {
    for (const auto& [mode, s] : per_mode) {
      if (s.unavailable) {
        out += fmt::format("{:<10} {:<7} not run: {}\n", backend, mode, *s.unavailable);
        continue;
      }
      out += fmt::format("{:<10} {:<7} {:>9} {:>10.0f} {:>10} {:>9.1f} {:>7} {:>6} {:>8}\n",
                         backend, mode, s.cases, s.seconds > 0 ? s.cases / s.seconds : 0.0,
                         s.accesses, s.exits > 0 ? static_cast<double>(s.accesses) / s.exits : 0.0,
                         s.failed, s.known, s.skipped);
    }
  }
  std::vector<std::string> known;
  for (const auto& [name, n] : known_deviations) known.push_back(fmt::format("{} {}", name, n));
  out += fmt::format(
      "{} cases in {:.1f} s ({:.0f} cases/s), {} accesses in {} round trips ({:.1f} per exit); "
      "{} finding{}; known deviations: {}\n",
      cases, seconds, seconds > 0 ? cases / seconds : 0.0, accesses, exits,
      exits > 0 ? static_cast<double>(accesses) / exits : 0.0, findings.size(),
      findings.size() == 1 ? "" : "s",
      known.empty() ? "none" : fmt::format("{}", fmt::join(known, ", ")));
  if (backends.size() > 1) {
    out += fmt::format("accesses where the backends differ, each as the architecture allows: {}\n",
                       backends_differ_allowed);
  }
  for (const auto& [sig, n] : findings) out += fmt::format("  {} cases: {}\n", n, sig);
  for (const auto& [sig, n] : unconfirmed) {
    out += fmt::format("  {} cases not reproduced alone (not findings): {}\n", n, sig);
  }
  return out;
}

CampaignSummary run_campaign(const CampaignOptions& options) {
  const auto t0 = Clock::now();
  CampaignSummary summary;
  summary.seed = options.seed;
  summary.shard = options.shard.describe();
  summary.profile = to_string(options.profile);
  const unsigned jobs = std::max(1U, options.jobs);
  summary.jobs = jobs;
  const auto& kinds = options.backends;
  const auto wanted = options.modes.empty() ? EveryMode : options.modes;
  // crews[j]: worker j's machines. Confirming and shrinking a finding run on machines of
  // their own, so that a worker's machine sees only its batches.
  std::vector<Crew> crews;
  for (unsigned j = 0; j < jobs; ++j) crews.emplace_back(kinds, options.strict);
  Crew confirming(kinds, options.strict);
  // Cases use only what every backend's CPU offers, so each runs everywhere.
  GeneratorConfig cfg;
  cfg.profile = options.profile;
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    auto& s = crews.front().slot(wanted.front(), i);
    summary.backends.push_back(s.name);
    const auto f = s.lab->cpu().paging_features();
    if (i == 0) {
      cfg.features = f;
      continue;
    }
    auto& g = cfg.features;
    g.maxphyaddr = std::min(g.maxphyaddr, f.maxphyaddr);
    g.pse &= f.pse, g.pse36 &= f.pse36, g.pae &= f.pae, g.pge &= f.pge, g.nx &= f.nx;
    g.page1g &= f.page1g, g.smep &= f.smep, g.smap &= f.smap, g.pku &= f.pku, g.la57 &= f.la57;
  }
  // Every mode the backends can enter (the reason where one cannot).
  std::map<PagingMode, std::set<std::size_t>> unavailable;
  for (const auto mode : wanted) {
    bool any = false;
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      auto& stats = summary.modes[summary.backends[i]][mode_keyword(mode)];
      try {
        crews.front().slot(mode, i).ready();
        any = true;
      } catch (const std::exception& e) {
        crews.front().drop(mode, i);
        unavailable[mode].insert(i);
        stats.unavailable = first_line(e.what());
      }
    }
    if (any) cfg.modes.push_back(mode);
  }
  if (cfg.modes.empty()) {
    throw std::runtime_error("no paging mode asked for can run on the backends here");
  }

  std::map<std::string, Finding> found;
  // A command that runs the batches before an unconfirmed case again (the same batch
  // boundaries when one mode runs: they start at --from, and the n-th goes to worker
  // n % jobs).
  auto rerun_of = [&](const Slot& s, std::uint64_t batch_first, std::uint64_t number) {
    const std::uint64_t stride = std::uint64_t{options.batch_cases} * jobs * options.shard.count;
    constexpr std::uint64_t BatchesBefore = 4;
    const std::uint64_t back = std::min(batch_first - options.first, BatchesBefore * stride);
    const std::uint64_t from = batch_first - back;
    std::vector<std::string> modes;
    for (const auto m : cfg.modes) modes.push_back(mode_keyword(m));
    return fmt::format(
        "pagelab fuzz --backend {} --seed {} --mode {} --profile {} --shard {} --batch {} -j {}{} "
        "--from {} --cases {}",
        s.kind == lab::BackendKind::Kvm ? "kvm" : "qemu", options.seed, fmt::join(modes, ","),
        to_string(options.profile), options.shard.describe(), options.batch_cases, jobs,
        options.strict ? " --strict" : "", from, number + 1 - from);
  };
  std::set<std::string> unconfirmed_told;
  auto tell_unconfirmed = [&](const Slot& s, PagingMode mode, const FuzzCase& c,
                              const CaseOutcome& o, const std::string& sig,
                              std::uint64_t batch_first) {
    if (!unconfirmed_told.insert(sig).second) return;
    Unconfirmed u;
    u.signature = sig;
    u.backend = s.name;
    u.mode = mode;
    u.seed = options.seed;
    u.case_number = c.number;
    u.batch_first = batch_first;
    u.case_text = to_pgl(c, {});
    u.report = o.disagreement->report;
    u.rerun = rerun_of(s, batch_first, c.number);
    if (options.findings) {
      const auto file =
          *options.findings / fmt::format("unconfirmed-{}-{}-{:012x}.txt", s.name,
                                          mode_keyword(mode), fnv1a(sig) & 0xffff'ffff'ffffULL);
      std::string text = fmt::format(
          "# pagelab fuzz: not reproduced alone (no finding): {}\n"
          "# seed {} case {} in the batch from case {}, backend {}\n"
          "# The cases before it in its batch (or earlier batches) left something the model\n"
          "# lost track of. Run the batches before it again (an earlier --from if needed):\n"
          "#   {}\n#\n",
          sig, u.seed, u.case_number, u.batch_first, s.name, u.rerun);
      std::istringstream lines(u.report);
      for (std::string line; std::getline(lines, line);) text += "# " + line + "\n";
      text += "#\n# The case (passes alone):\n" + u.case_text;
      campaign::write_file_atomically(file, text);
      u.file = file;
    }
    if (options.on_unconfirmed) options.on_unconfirmed(u);
  };
  auto handle_failure = [&](std::size_t backend, PagingMode mode, const FuzzCase& c,
                            const CaseOutcome& o, std::uint64_t batch_first) {
    const auto sig = summary.backends[backend] + ":" + o.disagreement->signature(mode);
    if (auto it = found.find(sig); it != found.end()) {
      ++it->second.count;
      ++summary.findings[sig];
      return;
    }
    const auto t = Clock::now();
    auto& s = confirming.slot(mode, backend);
    auto alone = [&](const FuzzCase& k) { return s.run(std::span(&k, 1), true).front(); };
    // Confirmed alone, on guest RAM as a replay finds it, or not a finding: what earlier
    // cases left in data pages cannot be written into a reproducer.
    const auto confirmed = alone(c);
    if (!confirmed.disagreement || s.name + ":" + confirmed.disagreement->signature(mode) != sig) {
      ++summary.unconfirmed[sig];
      tell_unconfirmed(s, mode, c, o, sig, batch_first);
      summary.modes[s.name][mode_keyword(mode)].seconds += seconds_since(t);
      return;
    }
    const auto r = shrink(c, confirmed, alone);
    summary.modes[s.name][mode_keyword(mode)].seconds += seconds_since(t);
    Finding f;
    f.signature = sig;
    const auto& d = *r.outcome.disagreement;
    f.kind = d.kind;
    f.backend = s.name;
    f.mode = mode;
    f.level = d.level;
    f.rule = d.rule;
    f.seed = c.seed;
    f.case_number = c.number;
    f.observed = d.observed;
    for (const auto& a : d.allowed) f.allowed.push_back(paging::describe(a));
    f.reproducer = reproducer_text(r.minimal, r.outcome,
                                   {sig, s.name, to_string(options.profile),
                                    options.shard.describe(), s.lab->cpu().paging_features().amd});
    f.lines = static_cast<unsigned>(std::count(f.reproducer.begin(), f.reproducer.end(), '\n'));
    f.shrink_runs = r.runs;
    if (options.findings) {
      const auto file =
          *options.findings / fmt::format("{}-{}-{:012x}.pgl", s.name, mode_keyword(mode),
                                          fnv1a(sig) & 0xffff'ffff'ffffULL);
      campaign::write_file_atomically(file, f.reproducer);
      f.file = file;
    }
    summary.findings[sig] = 1;
    if (options.on_finding) options.on_finding(f);
    found.emplace(sig, std::move(f));
  };

  // A finished batch, taken in the order the batches were made.
  auto take = [&](Batch& b) {
    const auto mode = b.mode;
    const auto& cases = b.cases;
    for (std::size_t i = 0; i < kinds.size(); ++i) {
      if (!b.ran[i]) continue;
      auto& stats = summary.modes[summary.backends[i]][mode_keyword(mode)];
      // The workers' batches overlap: a mode's time is its batches' share of the workers.
      stats.seconds += b.took[i] / jobs;
      stats.exits += b.exits[i];
      summary.exits += b.exits[i];
    }
    for (std::size_t k = 0; k < cases.size(); ++k) {
      ++summary.cases;
      for (std::size_t i = 0; i < kinds.size(); ++i) {
        if (!b.ran[i]) continue;
        const auto& o = b.outs[i][k];
        auto& stats = summary.modes[summary.backends[i]][mode_keyword(mode)];
        ++stats.cases;
        stats.accesses += o.accesses_run;
        summary.accesses += o.accesses_run;
        switch (o.verdict) {
          case CaseOutcome::Verdict::Skipped:
            ++stats.skipped;
            if (stats.skip_reasons.size() < 16 || stats.skip_reasons.contains(o.skip_reason)) {
              ++stats.skip_reasons[o.skip_reason];
            }
            break;
          case CaseOutcome::Verdict::KnownDeviation:
            ++stats.known;
            for (const auto& d : o.deviations) ++summary.known_deviations[d];
            break;
          case CaseOutcome::Verdict::Failed:
            ++stats.failed;
            handle_failure(i, mode, cases[k], o, cases.front().number);
            break;
          case CaseOutcome::Verdict::Passed:
            break;
        }
      }
      // Backends against each other: the same access, different outcomes, each allowed.
      for (std::size_t i = 0; i + 1 < kinds.size(); ++i) {
        for (std::size_t j = i + 1; j < kinds.size(); ++j) {
          if (!b.ran[i] || !b.ran[j]) continue;
          const auto& x = b.outs[i][k].accesses;
          const auto& y = b.outs[j][k].accesses;
          for (std::size_t a = 0; a < std::min(x.size(), y.size()); ++a) {
            if (x[a].ran && y[a].ran && x[a].agrees && y[a].agrees &&
                outcome_class(x[a].observed) != outcome_class(y[a].observed)) {
              ++summary.backends_differ_allowed;
            }
          }
        }
      }
    }
  };

  // Batches on their way: made here, run by the workers, taken back in order. Declared
  // before the workers, which may still be finishing one when an error unwinds.
  std::deque<std::unique_ptr<Batch>> in_flight;
  std::vector<std::optional<unsigned>> cpus(jobs);
  if (options.pin_workers) {
    const auto ids = campaign::usable_cpu_ids();
    for (unsigned j = 0; j < jobs; ++j) cpus[j] = campaign::cpu_for_worker(j, jobs, ids);
  }
  Workers workers(crews, unavailable, std::move(cpus));
  // Two batches per worker: one running, one waiting, while this thread makes the next.
  const std::size_t most_in_flight = 2 * std::size_t{jobs};
  std::map<PagingMode, std::uint64_t> made;
  auto take_oldest = [&] {
    auto b = std::move(in_flight.front());
    in_flight.pop_front();
    workers.wait(*b);
    if (b->error) std::rethrow_exception(b->error);
    take(*b);
    if (options.on_progress) options.on_progress(summary.cases, found.size(), Clock::now() - t0);
  };
  auto submit = [&](PagingMode mode, std::vector<FuzzCase>& cases) {
    if (cases.empty()) return;
    auto b = std::make_unique<Batch>();
    b->mode = mode;
    b->cases = std::move(cases);
    cases.clear();
    b->outs.resize(kinds.size());
    b->ran.assign(kinds.size(), false);
    b->took.assign(kinds.size(), 0.0);
    b->exits.assign(kinds.size(), 0);
    workers.submit(made[mode]++ % jobs, *b);
    in_flight.push_back(std::move(b));
    while (!in_flight.empty() &&
           (in_flight.size() > most_in_flight || workers.done(*in_flight.front()))) {
      take_oldest();
    }
  };

  std::map<PagingMode, std::vector<FuzzCase>> queues;
  // No std::optional here: g++ 12 warns it may be read uninitialized.
  const bool timed = options.time.has_value();
  const auto deadline = t0 + options.time.value_or(std::chrono::milliseconds(0));
  summary.stopped_by = "cases";
  std::uint64_t n = options.first;
  for (;; ++n) {
    if (options.cases && n - options.first >= *options.cases) break;
    if (!options.shard.owns(n)) continue;
    const auto mode = mode_of_case(cfg, options.seed, n);
    auto& q = queues[mode];
    q.push_back(generate_case(cfg, options.seed, n));
    if (q.size() < options.batch_cases) continue;
    submit(mode, q);
    if (options.stop_requested && options.stop_requested()) {
      summary.stopped_by = "signal";
      break;
    }
    if (timed && Clock::now() >= deadline) {
      summary.stopped_by = "time";
      break;
    }
  }
  if (summary.stopped_by != "signal") {
    for (auto& [mode, q] : queues) submit(mode, q);
  }
  while (!in_flight.empty()) take_oldest();
  auto notes_of = [&](const Slot& s) {
    if (!s.runner) return;
    for (const auto& note : s.runner->platform_notes()) {
      const auto text = s.name + ": " + note;
      if (std::find(summary.notes.begin(), summary.notes.end(), text) == summary.notes.end()) {
        summary.notes.push_back(text);
      }
    }
  };
  for (const auto& crew : crews) crew.each(notes_of);
  confirming.each(notes_of);
  summary.seconds = seconds_since(t0);
  return summary;
}

}  // namespace pagelab::fuzz

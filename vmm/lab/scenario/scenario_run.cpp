#include "pagelab/lab/scenario/scenario_run.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <type_traits>

#include "pagelab/lab/judge/ad_deviations.hpp"
#include "pagelab/lab/machine/probe_report.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab::scenario {

using namespace pagelab::paging;

namespace {

std::string expectation_text(const Expectation& e) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, ExpectOk>) {
          return "the access succeeds";
        } else if constexpr (std::is_same_v<T, ExpectValue>) {
          std::string v;
          for (auto n : x.values) v += fmt::format("{}{:#x}", v.empty() ? "" : " or ", n);
          if (x.mask != ~std::uint64_t{0}) v += fmt::format(" (mask {:#x})", x.mask);
          return "value " + v;
        } else if constexpr (std::is_same_v<T, ExpectTranslate>) {
          return fmt::format("translation to {:#x}", x.physical.value());
        } else if constexpr (std::is_same_v<T, ExpectPageFault>) {
          return fmt::format("#PF error code {:#x} ({}){}", x.error_code,
                             describe_error_code(x.error_code),
                             x.cr2 ? fmt::format(" CR2={:#x}", *x.cr2) : "");
        } else if constexpr (std::is_same_v<T, ExpectGp>) {
          return "#GP";
        } else {
          std::string s = fmt::format("level {}", x.level);
          if (x.accessed) s += fmt::format(" A={}", *x.accessed ? 1 : 0);
          if (x.dirty) s += fmt::format(" D={}", *x.dirty ? 1 : 0);
          return s;
        }
      },
      e);
}

// Does an allowed outcome (with its read value) meet the expectation?
bool meets(const Expectation& e, const AllowedOutcome& a) {
  const auto* t = std::get_if<Translation>(&a.outcome);
  const auto* pf = std::get_if<PageFault>(&a.outcome);
  if (std::holds_alternative<ExpectOk>(e)) return t != nullptr;
  if (const auto* v = std::get_if<ExpectValue>(&e)) {
    return t != nullptr && std::any_of(v->values.begin(), v->values.end(), [&](std::uint64_t n) {
             return (n & v->mask) == (a.value & v->mask);
           });
  }
  if (const auto* x = std::get_if<ExpectTranslate>(&e)) {
    return t != nullptr && t->physical == x->physical;
  }
  if (const auto* x = std::get_if<ExpectPageFault>(&e)) {
    return pf != nullptr && pf->error_code == x->error_code &&
           (!x->cr2 || pf->cr2.value() == *x->cr2);
  }
  if (std::holds_alternative<ExpectGp>(e)) {
    return std::holds_alternative<GeneralProtection>(a.outcome);
  }
  return false;
}

// Does the CPU's observation meet the expectation? A translation's physical address is
// not observable: the value read, and the backend's agreement with the oracle, stand in.
bool meets(const Expectation& e, const Observation& o, const std::vector<AllowedOutcome>& allowed) {
  using K = Observation::Kind;
  if (std::holds_alternative<ExpectOk>(e)) return o.kind == K::Ok;
  if (const auto* v = std::get_if<ExpectValue>(&e)) {
    return o.kind == K::Ok && std::any_of(v->values.begin(), v->values.end(), [&](auto n) {
             return (n & v->mask) == (o.value & v->mask);
           });
  }
  if (std::holds_alternative<ExpectTranslate>(e)) {
    if (o.kind != K::Ok || !o.agrees) return false;
    return std::any_of(allowed.begin(), allowed.end(),
                       [&](const AllowedOutcome& a) { return meets(e, a); });
  }
  if (const auto* x = std::get_if<ExpectPageFault>(&e)) {
    return o.kind == K::PageFault && o.error_code == x->error_code && (!x->cr2 || o.cr2 == *x->cr2);
  }
  if (std::holds_alternative<ExpectGp>(e)) return o.kind == K::GeneralProtection;
  return false;
}

std::string allowed_text(const AllowedOutcome& a, const AccessStep& step) {
  std::string s = paging::describe(a.outcome);
  if (std::holds_alternative<Translation>(a.outcome) && step.access.type == AccessType::Read) {
    s += fmt::format(" value {:#x}", a.value);
  }
  if (a.stale) s += " [stale: not yet invalidated]";
  return s;
}

std::string access_text(const AccessStep& step) {
  const char* type = step.access.type == AccessType::Read    ? "read"
                     : step.access.type == AccessType::Write ? "write"
                                                             : "fetch";
  std::string s = fmt::format("{} {:#x}", type, step.access.address.value());
  if (step.access.type != AccessType::Fetch) s += fmt::format(" size {}", step.access.size);
  s += step.access.privilege == Privilege::User ? " user" : " sup";
  if (step.ac) s += " ac";
  if (step.access.type == AccessType::Write) s += fmt::format(" value {:#x}", step.write_value);
  return s;
}

std::string walk_text(const std::vector<WalkStep>& steps, PagingMode mode) {
  std::string s;
  const int digits = static_cast<int>(entry_bytes(mode) * 2);
  for (const auto& st : steps) {
    s += fmt::format("      {:<5} [{:>3}] @ {:#x} = 0x{:0{}x}  {}\n", st.intel_name, st.index,
                     st.entry_address.value(), st.value, digits, st.meaning);
  }
  return s;
}

judge::Observed observed_of(const Observation& o) {
  judge::Observed ob;
  ob.kind =
      o.kind == Observation::Kind::Ok ? judge::Observed::Kind::Ok : judge::Observed::Kind::Fault;
  ob.vector = o.vector;
  ob.error_code = o.error_code;
  ob.cr2 = o.cr2;
  ob.value = o.value;
  return ob;
}

void check_ad(const ExpectAd& x, const Expect& e, const ScenarioModel::AdAllowed& allowed,
              const std::optional<Observation>& observed, CheckResult& c) {
  if (!allowed.reached) {
    c.passed = false;
    c.contradicts_architecture = true;
    c.diff = fmt::format("    the walk did not reach level {} ({})\n", x.level,
                         intel_level_name(x.level));
    return;
  }
  auto has = [](const std::vector<bool>& options, bool v) {
    return std::find(options.begin(), options.end(), v) != options.end();
  };
  auto options_text = [](const std::vector<bool>& options) {
    return options.size() == 2 ? std::string("0 or 1") : std::string(options[0] ? "1" : "0");
  };
  std::string diff;
  if (x.accessed && !has(allowed.accessed, *x.accessed)) {
    c.contradicts_architecture = true;
    diff += fmt::format("    A: expected {}, the architecture allows {}\n", *x.accessed ? 1 : 0,
                        options_text(allowed.accessed));
  }
  if (x.dirty && !has(allowed.dirty, *x.dirty)) {
    c.contradicts_architecture = true;
    diff += fmt::format("    D: expected {}, the architecture allows {}\n", *x.dirty ? 1 : 0,
                        options_text(allowed.dirty));
  }
  if (observed) {
    for (const auto& [address, value] : observed->entries_after) {
      if (address != allowed.entry_address) continue;
      const bool a = (value & Pte::Accessed) != 0, d = (value & Pte::Dirty) != 0;
      if ((x.accessed && *x.accessed != a) || (x.dirty && *x.dirty != d)) {
        diff += fmt::format("    expected: {}\n    observed: A={} D={} (entry @ {:#x} = {:#x})\n",
                            expectation_text(e.what), a ? 1 : 0, d ? 1 : 0, address, value);
      }
    }
  }
  if (!diff.empty()) {
    c.passed = false;
    c.diff = diff;
  }
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::Passed:
      return "passed";
    case Verdict::Failed:
      return "failed";
    case Verdict::Skipped:
      return "skipped";
  }
  return "?";
}

std::string describe(const Observation& o) {
  switch (o.kind) {
    case Observation::Kind::Ok:
      return fmt::format("ok value {:#x}", o.value);
    case Observation::Kind::PageFault:
      return fmt::format("#PF error code {:#x} ({}) CR2={:#x}", o.error_code,
                         describe_error_code(o.error_code), o.cr2);
    case Observation::Kind::GeneralProtection:
      return fmt::format("#GP({:#x})", o.error_code);
    case Observation::Kind::OtherFault:
      break;
  }
  return fmt::format("{} error code {:#x}", vector_name(o.vector), o.error_code);
}

unsigned ScenarioResult::count(Verdict v) const {
  return streamed[static_cast<std::size_t>(v)] +
         static_cast<unsigned>(
             std::count_if(accesses.begin(), accesses.end(),
                           [&](const AccessResult& a) { return a.verdict == v; }));
}

unsigned ScenarioResult::known_deviations() const {
  return streamed_deviations + static_cast<unsigned>(std::count_if(
                                   accesses.begin(), accesses.end(),
                                   [](const AccessResult& a) { return !a.deviation.empty(); }));
}

namespace {

// Judges one access from its judgement and (with a CPU) its observation: the verdict,
// and every `expect` line against both.
void finish_access(AccessResult& r, const AccessStep& step, const AccessJudgement& judgement,
                   const std::function<ScenarioModel::AdAllowed(unsigned)>& ad_allowed,
                   const std::optional<Observation>& observed, PagingMode mode,
                   const std::vector<AccessDeviation>& known) {
  const bool is_read = step.access.type == AccessType::Read;
  for (const auto& a : judgement.allowed) {
    r.allowed.push_back(allowed_text(a, step));
    r.allowed_fields.push_back(outcome_fields(a, is_read));
  }
  r.walk = judgement.fresh.steps;
  r.fault_reason = judgement.fresh.fault_reason;
  if (observed) {
    r.observed_fields = outcome_fields(*observed, is_read);
    r.observed = observed->kind == Observation::Kind::Ok && step.access.type != AccessType::Read
                     ? std::string("ok")
                     : describe(*observed);
    r.backend_report = observed->report;
    r.disagrees = !observed->agrees;
    const auto named = [&](const auto& list) {
      return std::any_of(list.begin(), list.end(),
                         [&](const auto& d) { return d.id == *observed->deviation; });
    };
    // An A/D deviation is the engine's read-back's: always from the lab's one list.
    const bool listed = observed->deviation && (named(known) || named(known_ad_deviations()));
    if (!observed->agrees && listed) {
      // A known platform deviation: the case cannot be judged here (DESIGN.md:
      // skipped with the reason, never passed, never a mysterious failure).
      r.verdict = Verdict::Skipped;
      r.deviation = *observed->deviation;
      r.reason = "known platform deviation " + r.deviation + ": the CPU did '" + r.observed +
                 "', outside what the architecture allows";
    } else if (!observed->agrees && observed->deviation) {
      r.verdict = Verdict::Failed;
      r.reason = "the CPU disagrees with the oracle (deviation " + *observed->deviation +
                 " is not in the list of known deviations)";
    } else if (!observed->agrees) {
      r.verdict = Verdict::Failed;
      r.reason = "the CPU disagrees with the oracle";
    }
  }
  for (const auto& e : step.expects) {
    CheckResult c;
    c.where = e.where;
    c.text = e.text;
    if (const auto* ad = std::get_if<ExpectAd>(&e.what)) {
      check_ad(*ad, e, ad_allowed(ad->level), observed, c);
    } else {
      const bool architecture_ok =
          std::any_of(judgement.allowed.begin(), judgement.allowed.end(),
                      [&](const AllowedOutcome& a) { return meets(e.what, a); });
      const bool cpu_ok = !observed || meets(e.what, *observed, judgement.allowed);
      c.passed = architecture_ok && cpu_ok;
      c.contradicts_architecture = !architecture_ok;
      if (!c.passed) {
        c.diff = fmt::format("    expected: {}\n", expectation_text(e.what));
        if (observed) c.diff += fmt::format("    observed: {}\n", describe(*observed));
        for (const auto& a : judgement.allowed) {
          c.diff += fmt::format("    oracle:   {}\n", allowed_text(a, step));
        }
        if (!judgement.fresh.fault_reason.empty()) {
          c.diff += fmt::format("    because:  {}\n", judgement.fresh.fault_reason);
        }
        c.diff += "    walk:\n" + walk_text(judgement.fresh.steps, mode);
      }
    }
    if (!c.passed && (r.verdict != Verdict::Skipped || c.contradicts_architecture)) {
      r.verdict = Verdict::Failed;
      if (r.reason.empty()) {
        r.reason = c.contradicts_architecture
                       ? "an expectation contradicts the architecture (scenario bug)"
                       : "an expectation was not met";
      }
    }
    r.checks.push_back(std::move(c));
  }
}

// Once the machine stopped (a triple fault, a hang, QEMU exited): the stop and where it
// happened, the first time it is seen.
std::optional<std::string> new_stop(const Machine* machine, const Location& where, bool& seen) {
  if (machine == nullptr || seen || !machine->stopped()) return std::nullopt;
  seen = true;
  return fmt::format("{} during {}:{}", *machine->stopped(), where.file, where.line);
}

bool has_ad_expectation(const AccessStep& step) {
  return std::any_of(step.expects.begin(), step.expects.end(),
                     [](const Expect& e) { return std::holds_alternative<ExpectAd>(e.what); });
}

// Accesses a judging machine takes before the runner asks for their results: enough
// for a few batches of the engine, few enough that a long file's memory stays flat.
constexpr std::size_t FlushEvery = 2048;

// The statements in file order: a scenario's vector, or a reader's one at a time. What
// next() returns stays valid until the following call; `stable`: for good.
class StatementSource {
 public:
  explicit StatementSource(const Scenario& scenario) : scenario_(&scenario) {}
  explicit StatementSource(ScenarioReader& reader) : reader_(&reader) {}
  [[nodiscard]] bool stable() const { return reader_ == nullptr; }
  Statement* next() {
    if (reader_ == nullptr) {
      if (index_ == scenario_->statements.size()) return nullptr;
      // Never written through: only a reader's statement may be moved from.
      return const_cast<Statement*>(&scenario_->statements[index_++]);
    }
    held_ = reader_->next();
    return held_ ? &*held_ : nullptr;
  }

 private:
  const Scenario* scenario_ = nullptr;
  std::size_t index_ = 0;
  ScenarioReader* reader_ = nullptr;
  std::optional<Statement> held_;
};

// `scenario`: the file's header and at least its statements up to the first access
// (what precheck and start need); `source` gives every statement. `current` follows the
// statement being run, for run_scenario to name it.
ScenarioResult run_statements(const Scenario& scenario, StatementSource& source, Machine* machine,
                              const std::vector<AccessDeviation>& known, AccessSink* sink,
                              const Statement*& current) {
  ScenarioResult result;
  result.file = scenario.file;
  result.title = scenario.title;
  result.warnings = scenario.warnings;
  result.backend = machine != nullptr ? machine->name() : "oracle";
  std::optional<std::string> skip;
  if (machine != nullptr) skip = machine->precheck(scenario);
  auto oracle_features = full_features();
  oracle_features.amd = scenario.rules == "amd";
  ScenarioModel model(machine != nullptr && !skip ? machine->features() : oracle_features);
  if (skip) result.reason = *skip;

  // With a CPU whose engine judges, accesses go in batches: queued until an access
  // whose A/D bits an `expect ad` line reads, or the end; the model only moves forward
  // as a walking CPU would, and the engine's judge (fed the real observations) decides.
  struct Queued {
    AccessResult result;
    const AccessStep* step;  // the source's, or `owned`
    AccessStep owned;        // a reader's statement is gone by the time the batch runs
  };
  std::deque<Queued> queued;  // stable addresses: `step` may point into an element
  // A finished access: to the sink, or kept.
  auto emit = [&](AccessResult&& r) {
    if (sink == nullptr) {
      result.accesses.push_back(std::move(r));
      return;
    }
    ++result.streamed[static_cast<std::size_t>(r.verdict)];
    if (!r.deviation.empty()) ++result.streamed_deviations;
    sink->on_access(result, r);
  };
  bool stopped = false;
  std::optional<std::string> skip_rest;  // the machine stopped
  // A stopped machine runs nothing more: the first access it did not run fails with
  // the stop (a scenario the CPU did not finish cannot pass), the rest are skipped at
  // once.
  auto fail_on_stop = [&](AccessResult& r) {
    const auto stop = new_stop(machine, r.where, stopped);
    if (!stop) return false;
    r.verdict = Verdict::Failed;
    r.reason = *stop;
    result.reason = *stop;
    skip_rest = *stop;
    skip = *stop;
    return true;
  };
  auto flush = [&](bool read_back) {
    if (queued.empty()) return;
    auto got = machine->flush(model, read_back);
    for (std::size_t k = 0; k < queued.size(); ++k) {
      auto& r = queued[k].result;
      const auto& step = *queued[k].step;
      std::optional<Observation> observed;
      if (k >= got.size()) {
        r.verdict = Verdict::Skipped;
        r.reason = "the backend returned no result for this access";
      } else if (auto* why = std::get_if<std::string>(&got[k])) {
        r.verdict = Verdict::Skipped;
        r.reason = *why;
        fail_on_stop(r);
      } else {
        observed = std::move(std::get<Observation>(got[k]));
      }
      if (observed && observed->judgement) {
        const auto& entries = observed->entries;
        finish_access(
            r, step, *observed->judgement,
            [&](unsigned level) { return ScenarioModel::ad_allowed(entries, level); }, observed,
            model.mode(), known);
      } else {
        // The engine never ran the access: it is skipped; the model says what was allowed.
        auto j = model.judge(step);
        finish_access(
            r, step, j, [&](unsigned level) { return model.ad_allowed(level); }, std::nullopt,
            model.mode(), known);
      }
      emit(std::move(r));
    }
    queued.clear();
  };
  // An access finished without the machine: after every queued one, in file order.
  auto emit_direct = [&](AccessResult&& r) {
    flush(false);
    emit(std::move(r));
  };

  bool started = false;
  while (Statement* next = source.next()) {
    const Statement& st = *next;
    const auto* step = std::get_if<AccessStep>(&st.action);
    if (step == nullptr) {
      current = &st;
      model.apply(st);
      if (started && machine != nullptr && !skip) skip = machine->apply(st, model);
      if (skip_rest) skip = skip_rest;
      continue;
    }
    current = &st;
    if (skip_rest) skip = skip_rest;
    if (!started) {
      model.ensure_built();
      started = true;
      if (machine != nullptr && !skip) {
        skip = machine->start(scenario, model);
        if (skip) result.reason = *skip;
      }
    }
    AccessResult r;
    r.where = st.where;
    r.text = access_text(*step);
    if (fail_on_stop(r)) {  // it stopped before this access could run (e.g. at start)
      const AccessJudgement judgement = model.judge(*step);
      model.commit(*step, judgement, nullptr);
      const std::string reason = r.reason;
      finish_access(
          r, *step, judgement, [&](unsigned level) { return model.ad_allowed(level); },
          std::nullopt, model.mode(), known);
      r.verdict = Verdict::Failed;
      r.reason = reason;
      emit_direct(std::move(r));
      continue;
    }
    if (machine != nullptr && !skip && machine->judges()) {
      auto& q = queued.emplace_back();
      q.result = std::move(r);
      q.step = step;
      if (!source.stable()) {
        q.owned = std::move(std::get<AccessStep>(next->action));
        q.step = &q.owned;
        step = q.step;
      }
      machine->queue(*step, model);
      model.advance(*step);
      if (has_ad_expectation(*step)) {
        flush(true);
      } else if (queued.size() >= FlushEvery) {
        flush(false);
      }
      continue;
    }
    if (machine != nullptr && !skip) {
      // A machine that only reports what the CPU did: the model judges, one at a time.
      const AccessJudgement judgement = model.judge(*step);
      machine->queue(*step, model);
      auto got = machine->flush(model, true);
      std::optional<Observation> observed;
      if (got.empty()) {
        r.verdict = Verdict::Skipped;
        r.reason = "the backend returned no result for this access";
      } else if (auto* why = std::get_if<std::string>(&got[0])) {
        r.verdict = Verdict::Skipped;
        r.reason = *why;
        fail_on_stop(r);
      } else {
        observed = std::get<Observation>(got[0]);
      }
      if (observed) {
        const auto ob = observed_of(*observed);
        model.commit(*step, judgement, &ob);
      } else {
        model.commit(*step, judgement, nullptr);
      }
      finish_access(
          r, *step, judgement, [&](unsigned level) { return model.ad_allowed(level); }, observed,
          model.mode(), known);
      emit_direct(std::move(r));
      continue;
    }
    if (skip) {
      r.verdict = Verdict::Skipped;
      r.reason = *skip;
    }
    const AccessJudgement judgement = model.judge(*step);
    model.commit(*step, judgement, nullptr);
    finish_access(
        r, *step, judgement, [&](unsigned level) { return model.ad_allowed(level); }, std::nullopt,
        model.mode(), known);
    emit_direct(std::move(r));
  }
  flush(false);
  if (skip_rest) skip = skip_rest;
  if (result.count(Verdict::Failed) > 0) {
    result.verdict = Verdict::Failed;
  } else if (const unsigned ran = result.count(Verdict::Passed) + result.count(Verdict::Skipped);
             skip || (ran > 0 && result.count(Verdict::Skipped) == ran)) {
    result.verdict = Verdict::Skipped;
    if (result.reason.empty() && skip) result.reason = *skip;
  }
  return result;
}

}  // namespace

namespace {

// Runs the statements of `source`; what the model refuses while running (a walk that
// leaves guest RAM) is the input's fault: said where, like a parse error.
ScenarioResult run_from(const Scenario& head, StatementSource& source, Machine* machine,
                        const std::vector<AccessDeviation>& known, AccessSink* sink) {
  const Statement* current = nullptr;
  try {
    return run_statements(head, source, machine, known, sink, current);
  } catch (const ScenarioError&) {
    throw;
  } catch (const std::exception& e) {
    if (current == nullptr) throw;
    throw ScenarioError(current->where, e.what());
  }
}

}  // namespace

ScenarioResult run_scenario(const Scenario& scenario, Machine* machine,
                            const std::vector<AccessDeviation>& known, AccessSink* sink) {
  StatementSource source(scenario);
  return run_from(scenario, source, machine, known, sink);
}

ScenarioResult run_scenario_file(const Scenario& head, Machine* machine,
                                 const std::vector<AccessDeviation>& known, AccessSink* sink) {
  ScenarioReader reader(head.file);
  StatementSource source(reader);
  return run_from(head, source, machine, known, sink);
}

Scenario scan_scenario(const std::string& path) {
  ScenarioReader reader(path);
  std::vector<Statement> head;
  bool accessed = false;
  while (auto st = reader.next()) {
    if (accessed) continue;  // read to the end: every statement is checked
    accessed = std::holds_alternative<AccessStep>(st->action);
    head.push_back(std::move(*st));
  }
  Scenario s = reader.header();
  s.statements = std::move(head);
  return s;
}

}  // namespace pagelab::lab::scenario

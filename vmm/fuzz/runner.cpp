#include "pagelab/fuzz/runner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <tuple>

#include "pagelab/lab/machine/cpu_features.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/walker.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::fuzz {

using lab::ControlRegister;
using lab::ProbeStatus;
using paging::PagingMode;

namespace {

constexpr std::uint32_t VectorGp = 13, VectorPf = 14;
// Leaves name frames from here up (fuzz_case.hpp); below are the probe and the tables.
constexpr std::uint64_t DataBase = 0x800000;

// Write offsets of the generator whose words an alias of a table may have changed.
constexpr std::uint64_t AliasWritten[] = {0x100, 0x108, 0x3f8};

bool names_a_table(const Window& w, unsigned level, std::uint64_t v) {
  const std::uint64_t frame = v & paging::bits(12, 31);
  if ((v & paging::bits(32, 51)) != 0) return false;
  for (unsigned l = 1; l < w.top; ++l) {
    if (frame == w.table[l] && !(level == l + 1)) return true;
  }
  return false;
}

// Some value may turn a window table into a page an access writes.
bool may_write_tables(const FuzzCase& c) {
  const Window& w = window_for(c.mode);
  bool writes = false, alias = false;
  for (const auto& e : c.entries) alias = alias || names_a_table(w, e.level, e.value);
  for (const auto& s : c.steps) {
    if (const auto* a = std::get_if<StepAccess>(&s)) {
      writes = writes || a->type == paging::AccessType::Write;
    } else if (const auto* e = std::get_if<StepSetEntry>(&s)) {
      alias = alias || names_a_table(w, e->level, e->value);
    }
  }
  return writes && alias;
}

std::string access_kind(const lab::OpAccess& a) {
  const char* t = a.type == paging::AccessType::Read    ? "read"
                  : a.type == paging::AccessType::Write ? "write"
                                                        : "fetch";
  return fmt::format("{}-{}", t, a.privilege == paging::Privilege::User ? "U" : "S");
}

std::string ad_problem(const std::string& report) {
  // "A/D: entry at 0x.. (after op N): PROBLEM; read back 0x.."
  const auto from = report.find("): ");
  const auto to = report.find("; read back");
  if (from == std::string::npos || to == std::string::npos || to < from) return "a/d";
  return report.substr(from + 3, to - from - 3);
}

}  // namespace

std::string Disagreement::signature(PagingMode mode) const {
  return fmt::format("{}/{}/L{}/{}", kind, mode_keyword(mode), level, rule);
}

std::string_view to_string(CaseOutcome::Verdict verdict) {
  switch (verdict) {
    case CaseOutcome::Verdict::Passed:
      return "passed";
    case CaseOutcome::Verdict::Failed:
      return "failed";
    case CaseOutcome::Verdict::KnownDeviation:
      return "known-deviation";
    default:
      return "skipped";
  }
}

std::string outcome_class(const lab::OpResult& o) {
  if (o.status == ProbeStatus::Ok) return "ok";
  if (o.status == ProbeStatus::BadCommand) return "not-run";
  if (o.vector == VectorPf) return fmt::format("pf:{:#x}", o.error_code);
  if (o.vector == VectorGp) return "gp";
  return fmt::format("vector{}", o.vector);
}

std::string outcome_class(const paging::Outcome& o) {
  if (std::holds_alternative<paging::Translation>(o)) return "ok";
  if (const auto* pf = std::get_if<paging::PageFault>(&o)) {
    return fmt::format("pf:{:#x}", pf->error_code);
  }
  return "gp";
}

ModeRunner::ModeRunner(lab::Lab& lab, PagingMode mode) : lab_(lab), mode_(mode) {
  lab::EngineOptions options;
  options.mode = mode;
  // A known deviation is counted by name (unless --strict), and an agreeing access is
  // only counted: neither is put into words nor kept.
  options.explain_deviations = false;
  options.keep_agreeing_judgements = false;
  options.keep_agreeing_entries = false;
  options.track_written_words = true;  // data_dirty_
  engine_ = std::make_unique<lab::Engine>(lab_, options);
  const Window& w = window_for(mode);
  // The window's tables start empty; the top-level entry is written by every case.
  for (unsigned l = 1; l < w.top; ++l) {
    for (std::uint64_t off = 0; off < 0x1000; off += 8) {
      lab_.physical().write64(paging::GuestPhys(w.table[l] + off), 0);
    }
  }
  // Every page an access of the window can reach in 8..16 MiB holds the engine's fetch
  // return at the fetch offsets before anything runs: a CPU that fetches from a page
  // the engine did not plan for (a stale translation) finds it there too, and QEMU never
  // caches a translation of other bytes at those addresses.
  for (std::uint64_t page = 0x800000; page < 0x1000000; page += 0x1000) {
    for (const std::uint64_t off : {0x800, 0x840}) {
      auto* p = lab_.ram().host(paging::GuestPhys(page + off), 2);
      p[0] = BATCH_FETCH_RETURN_0;
      p[1] = BATCH_FETCH_RETURN_1;
    }
  }
  base_.root_entry =
      engine_->space().entry_address(paging::Linear(w.entry_va(w.top, w.top_index)), w.top).value();
  engine_->start();
  const auto s = engine_->cpu_state();
  base_.cr0 = s.cr0;
  base_.cr3 = s.cr3;
  base_.cr4 = s.cr4;
  base_.efer = s.efer;
  base_.has_pku = s.features.pku;
  base_.has_invpcid = lab_.cpu().has(lab::cpuid::Invpcid);
  controls_ = ControlValues{s.cr0, s.cr4, s.efer, 0};
  dirty_.push_back(base_.root_entry);
}

ModeRunner::~ModeRunner() = default;

void ModeRunner::set_strict(bool strict) {
  strict_ = strict;
  engine_->set_explain_deviations(strict);
}

void ModeRunner::lower_reset(const FuzzCase& c, std::vector<lab::Op>& ops) {
  const auto cv = control_values(c, base_);
  const bool known = controls_.has_value();
  if (!known || controls_->cr0 != cv.cr0)
    ops.emplace_back(lab::OpWriteControl{ControlRegister::Cr0, cv.cr0});
  if (!known || controls_->cr4 != cv.cr4)
    ops.emplace_back(lab::OpWriteControl{ControlRegister::Cr4, cv.cr4});
  if (!known || controls_->efer != cv.efer) {
    ops.emplace_back(lab::OpWriteControl{ControlRegister::Efer, cv.efer});
  }
  if (c.controls.pke && (!known || controls_->pkru != cv.pkru)) {
    ops.emplace_back(lab::OpWriteControl{ControlRegister::Pkru, cv.pkru});
  }
  controls_ = cv;
  if (!c.controls.pke) controls_->pkru = ~std::uint32_t{0};  // unknown to the next PKE case
  // The window as the case wants it: its entries, everything else a case may have set
  // back to zero; in address order, an entry's value before a zero for the same word.
  auto& want = want_;
  want.clear();
  for (const auto& e : c.entries)
    want.emplace_back(entry_address(c, base_, e.level, e.index), e.value);
  for (const auto a : dirty_) want.emplace_back(a, 0);
  // Stable by address. A few words a case: an insertion sort (std::stable_sort took a
  // buffer from the heap at every case).
  for (std::size_t i = 1; i < want.size(); ++i) {
    const auto x = want[i];
    std::size_t k = i;
    for (; k > 0 && want[k - 1].first > x.first; --k) want[k] = want[k - 1];
    want[k] = x;
  }
  want.erase(std::unique(want.begin(), want.end(),
                         [](const auto& x, const auto& y) { return x.first == y.first; }),
             want.end());
  dirty_.clear();
  const bool four = c.mode == PagingMode::Bits32;
  for (const auto& [a, v] : want) {
    ops.emplace_back(lab::OpWriteEntry{paging::GuestPhys(a), v});
    if (v != 0 || a == base_.root_entry) dirty_.push_back(a);
  }
  for (const auto& s : c.steps) {
    if (const auto* e = std::get_if<StepSetEntry>(&s)) {
      dirty_.push_back(entry_address(c, base_, e->level, e->index));
    }
  }
  if (may_write_tables(c)) {
    const Window& w = window_for(c.mode);
    for (unsigned l = 1; l < w.top; ++l) {
      for (const auto off : AliasWritten) {
        dirty_.push_back(w.table[l] + off);
        if (four) dirty_.push_back(w.table[l] + off + 4);
      }
    }
  }
}

void ModeRunner::lower_flush(const FuzzCase& c, std::vector<lab::Op>& ops) const {
  if ((control_values(c, base_).cr4 & paging::Cr4::Pge) != 0) {
    // Everything, global translations and the paging-structure caches too (SDM
    // §4.10.4.1): INVPCID's all-context invalidation with globals (type 2) where CPUID
    // has it, as the PGE toggle does in two CR4 writes (on TCG two full flushes, under
    // a shadow MMU two exits that each reset its context).
    if (base_.has_invpcid) {
      ops.emplace_back(lab::OpInvpcid{2, 0, paging::Linear(0)});
    } else {
      ops.emplace_back(lab::OpTogglePge{});
    }
    // MOV CR3 would only flush again (a full TCG flush, a VM exit under a shadow MMU),
    // but for PAE, whose PDPTEs it loads.
    if (c.mode != PagingMode::Pae) return;
  }
  ops.emplace_back(lab::OpWriteControl{ControlRegister::Cr3, base_.cr3});
}

std::vector<CaseOutcome> ModeRunner::run(std::span<const FuzzCase> cases, bool isolated) {
  std::vector<lab::Op> ops;
  ops.reserve(cases.size() * 24);
  if (isolated) {
    for (const auto word : data_dirty_) {
      ops.emplace_back(lab::OpForeignWrite{paging::GuestPhys(word), 0});
    }
    data_dirty_.clear();
  }
  struct Span {
    std::size_t begin, steps_begin, end;
    std::size_t step_ops;  // where its steps' op indices start in step_op
  };
  std::vector<std::size_t> step_op;  // every case's, one after another
  step_op.reserve(cases.size() * 16);
  // Cases with the same control registers run one after another: on TCG a control
  // write flushes the whole TLB, and every case starts from its own reset anyway.
  std::vector<std::size_t> order(cases.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t, std::uint32_t>> controls;
  controls.reserve(cases.size());
  for (const auto& c : cases) {
    const auto cv = control_values(c, base_);
    controls.emplace_back(cv.cr0, cv.cr4, cv.efer, c.controls.pke ? cv.pkru : 0U);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return controls[a] < controls[b]; });
  std::vector<Span> spans;
  spans.reserve(cases.size());
  for (const auto k : order) {
    const auto& c = cases[k];
    Span s;
    s.begin = ops.size();
    s.step_ops = step_op.size();
    lower_reset(c, ops);
    // The setup steps before the flush, as a `.pgl` makes them before entering the mode.
    const auto setup = setup_steps(c);
    lower_steps(c, base_, ops, &step_op, 0, setup);
    lower_flush(c, ops);
    s.steps_begin = ops.size();
    lower_steps(c, base_, ops, &step_op, setup);
    s.end = ops.size();
    spans.push_back(s);
  }
  auto results = engine_->run(ops);
  for (const auto w : engine_->take_written_words()) {
    if (w >= DataBase) data_dirty_.insert(w);
  }
  std::vector<CaseOutcome> out(cases.size());
  bool refused_before = false;
  for (std::size_t pos = 0; pos < order.size(); ++pos) {
    const auto k = order[pos];
    const auto& sp = spans[pos];
    auto& o = out[k];
    if (refused_before) {
      o.verdict = CaseOutcome::Verdict::Skipped;
      o.skip_reason = "an earlier case's control write was refused in the same batch";
      continue;
    }
    for (std::size_t i = sp.begin; i < sp.steps_begin; ++i) {
      const auto& r = results[i];
      if (r.skipped || r.observed.status != ProbeStatus::Ok) {
        o.verdict = CaseOutcome::Verdict::Skipped;
        o.skip_reason = r.skipped ? *r.skipped
                                  : fmt::format("{} refused: {}", lab::op_name(r.op),
                                                outcome_class(r.observed));
        if (std::holds_alternative<lab::OpWriteControl>(r.op)) {
          refused_before = true;
          controls_.reset();
        }
        break;
      }
    }
    if (o.verdict == CaseOutcome::Verdict::Skipped) continue;
    const auto& c = cases[k];
    o.accesses.reserve(c.steps.size());
    for (std::size_t s = 0; s < c.steps.size(); ++s) {
      auto& r = results[step_op[sp.step_ops + s]];
      const auto* acc = std::get_if<lab::OpAccess>(&r.op);
      if (acc != nullptr) {
        AccessRecord rec;
        rec.step = s;
        rec.ran = !r.skipped;
        rec.observed = r.observed;
        rec.agrees = r.agrees;
        rec.deviation = r.deviation.value_or("");
        if (rec.ran) ++o.accesses_run;
        o.accesses.push_back(std::move(rec));
      }
      if (r.skipped || r.agrees) continue;
      if (r.deviation && !strict_) {
        if (std::find(o.deviations.begin(), o.deviations.end(), *r.deviation) ==
            o.deviations.end()) {
          o.deviations.push_back(*r.deviation);
        }
        continue;
      }
      if (o.disagreement) continue;
      Disagreement d;
      d.step = s;
      d.report = r.report;
      d.observed = r.summary();
      d.allowed = r.allowed;
      if (r.judgement && r.judgement->decided.entry_count > 0) {
        d.level = r.judgement->decided.entries[r.judgement->decided.entry_count - 1].level;
      }
      if (r.deviation) {
        d.kind = "deviation:" + *r.deviation;
        d.rule = acc != nullptr ? access_kind(*acc) : lab::op_name(r.op);
      } else if (acc == nullptr) {
        d.kind = "control";
        d.rule = fmt::format("{}: {}", lab::op_name(r.op), outcome_class(r.observed));
      } else if (r.report.rfind("A/D: ", 0) == 0) {
        d.kind = "ad";
        d.rule = fmt::format("{}: {}", access_kind(*acc), ad_problem(r.report));
      } else {
        d.kind = "oracle";
        std::vector<std::string> allowed;
        for (const auto& a : r.allowed) allowed.push_back(outcome_class(a));
        std::sort(allowed.begin(), allowed.end());
        allowed.erase(std::unique(allowed.begin(), allowed.end()), allowed.end());
        d.rule = fmt::format("{}: {} vs {}", access_kind(*acc), outcome_class(r.observed),
                             fmt::join(allowed, "|"));
      }
      o.disagreement = std::move(d);
    }
    if (o.disagreement) {
      o.verdict = CaseOutcome::Verdict::Failed;
    } else if (!o.deviations.empty()) {
      o.verdict = CaseOutcome::Verdict::KnownDeviation;
    }
  }
  return out;
}

}  // namespace pagelab::fuzz

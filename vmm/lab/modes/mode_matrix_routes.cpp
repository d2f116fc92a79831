// The named routes between modes (DESIGN.md "Mode transitions"): each step runs in the
// probe and is compared with the model; after a step that does not agree, the rest of
// the route is listed with the model's verdicts but not run.
#include <fmt/core.h>

#include "modes/mode_matrix_runner.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab::detail {

using paging::ControlState;
using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::FarJumpOperand;
using paging::Step;
using paging::Write;

namespace {

enum class Via {
  Write,      // the step's own control write
  EnterProt,  // PROBE_CMD_ENTER_PROT: CR0.PE=1, then a far jump to 32-bit code
  EnterReal,  // PROBE_CMD_ENTER_REAL: a far jump to 16-bit code, then CR0.PE=0
};

// A route step: what to write, computed from the state the route is in.
struct RouteStep {
  std::string label;
  Via via = Via::Write;
  Write what = Write::Cr0;
  std::function<std::uint64_t(const ControlState&, const ModeTables&)> value;
  bool needs_la57 = false;
};

using Tables = ModeTables;
RouteStep write(std::string label, Write what,
                std::function<std::uint64_t(const ControlState&, const Tables&)> value,
                bool needs_la57 = false) {
  return {std::move(label), Via::Write, what, std::move(value), needs_la57};
}

RouteStep enter_prot() {
  return {
      "ENTER_PROT: CR0.PE 0->1, far jump to 32-bit code", Via::EnterProt, Write::Cr0, {}, false};
}
RouteStep enter_real() {
  return {
      "ENTER_REAL: far jump to 16-bit code, CR0.PE 1->0", Via::EnterReal, Write::Cr0, {}, false};
}
RouteStep cr3(std::string label, paging::GuestPhys ModeTables::*root) {
  return write(std::move(label), Write::Cr3,
               [root](const ControlState&, const Tables& t) { return (t.*root).value(); });
}
RouteStep set(std::string label, Write what, std::uint64_t mask, bool needs_la57 = false) {
  return write(
      std::move(label), what,
      [what, mask](const ControlState& s, const Tables&) {
        const std::uint64_t now = what == Write::Cr0 ? s.cr0 : what == Write::Cr4 ? s.cr4 : s.efer;
        return now | mask;
      },
      needs_la57);
}
RouteStep clear(std::string label, Write what, std::uint64_t mask) {
  return write(std::move(label), what, [what, mask](const ControlState& s, const Tables&) {
    const std::uint64_t now = what == Write::Cr0 ? s.cr0 : what == Write::Cr4 ? s.cr4 : s.efer;
    return now & ~mask;
  });
}
RouteStep jump(std::string label, bool l, bool d, std::uint16_t selector, bool needs_la57 = false) {
  return write(
      std::move(label), Write::FarJumpCs,
      [=](const ControlState&, const Tables&) { return FarJumpOperand::make(l, d, selector); },
      needs_la57);
}

struct RouteSpec {
  std::string name, description;
  std::vector<RouteStep> steps;
};

std::vector<RouteSpec> route_specs(const paging::TransitionFeatures& f) {
  const auto pse =
      f.pse ? std::vector<RouteStep>{set("CR4.PSE 0->1 (the 32-bit map uses 4 MiB pages)",
                                         Write::Cr4, Cr4::Pse)}
            : std::vector<RouteStep>{};
  auto up4 = [] {
    return std::vector<RouteStep>{
        enter_prot(),
        cr3("CR3 = 4-level identity map", &ModeTables::level4),
        set("CR4.PAE 0->1", Write::Cr4, Cr4::Pae),
        set("EFER.LME 0->1", Write::Efer, Efer::Lme),
        set("CR0.PG 0->1 (IA-32e, compatibility mode)", Write::Cr0, Cr0::Pg),
        jump("far jump to CS.L=1 (64-bit mode)", true, false, PROBE_SEL_CODE64),
    };
  };
  std::vector<RouteSpec> r;
  {
    RouteSpec a{"a", "PG first: 32-bit paging, then PAE paging; LME can not be set in either", {}};
    a.steps = {enter_prot(), cr3("CR3 = 32-bit identity map", &ModeTables::bits32)};
    a.steps.insert(a.steps.end(), pse.begin(), pse.end());
    a.steps.push_back(set("CR0.PG 0->1 (32-bit paging)", Write::Cr0, Cr0::Pg));
    a.steps.push_back(set("EFER.LME 0->1 while paging (refused)", Write::Efer, Efer::Lme));
    a.steps.push_back(set("CR4.PAE 0->1 (PAE paging)", Write::Cr4, Cr4::Pae));
    a.steps.push_back(set("EFER.LME 0->1 while paging (refused)", Write::Efer, Efer::Lme));
    r.push_back(std::move(a));
  }
  r.push_back({"b",
               "PAE first, then PG: PAE paging; LME can not be set",
               {enter_prot(), cr3("CR3 = PAE identity map", &ModeTables::pae),
                set("CR4.PAE 0->1", Write::Cr4, Cr4::Pae),
                set("CR0.PG 0->1 (PAE paging)", Write::Cr0, Cr0::Pg),
                set("EFER.LME 0->1 while paging (refused)", Write::Efer, Efer::Lme)}});
  r.push_back({"c", "PAE, then LME with PG=0, then PG: 4-level paging, then 64-bit mode", up4()});
  r.push_back({"d",
               "LME first: PG is refused while PAE=0; then PAE, then PG: 4-level paging",
               {enter_prot(), cr3("CR3 = 4-level identity map", &ModeTables::level4),
                set("EFER.LME 0->1", Write::Efer, Efer::Lme),
                set("CR0.PG 0->1 with PAE=0 (refused)", Write::Cr0, Cr0::Pg),
                set("CR4.PAE 0->1", Write::Cr4, Cr4::Pae),
                set("CR0.PG 0->1 (IA-32e, compatibility mode)", Write::Cr0, Cr0::Pg),
                jump("far jump to CS.L=1 (64-bit mode)", true, false, PROBE_SEL_CODE64)}});
  {
    RouteSpec down{"down",
                   "the way down: 64-bit -> compatibility -> PG=0 -> LME=0 -> protected -> real",
                   up4()};
    down.steps.push_back(clear("CR0.PG 1->0 in 64-bit mode (refused)", Write::Cr0, Cr0::Pg));
    down.steps.push_back(
        jump("far jump to CS.L=0 D=1 (compatibility mode)", false, true, PROBE_SEL_CODE32));
    down.steps.push_back(
        clear("CR4.PAE 1->0 in compatibility mode (refused)", Write::Cr4, Cr4::Pae));
    down.steps.push_back(clear("CR0.PG 1->0 (leaves IA-32e mode)", Write::Cr0, Cr0::Pg));
    down.steps.push_back(clear("EFER.LME 1->0", Write::Efer, Efer::Lme));
    down.steps.push_back(enter_real());
    r.push_back(std::move(down));
  }
  {
    RouteSpec five{"5-level", "5-level entry: leave long mode, set CR4.LA57 with PG=0, re-enter",
                   up4()};
    five.steps.push_back(set("CR4.LA57 0->1 in 64-bit mode (refused)", Write::Cr4, Cr4::La57));
    five.steps.push_back(
        jump("far jump to CS.L=0 D=1 (compatibility mode)", false, true, PROBE_SEL_CODE32));
    five.steps.push_back(clear("CR0.PG 1->0 (leaves IA-32e mode)", Write::Cr0, Cr0::Pg));
    five.steps.push_back(set("CR4.LA57 0->1 with PG=0", Write::Cr4, Cr4::La57));
    five.steps.push_back(cr3("CR3 = 5-level identity map", &ModeTables::level5));
    five.steps.back().needs_la57 = true;
    five.steps.push_back(
        set("CR0.PG 0->1 (IA-32e, 5-level, compatibility mode)", Write::Cr0, Cr0::Pg, true));
    five.steps.push_back(
        jump("far jump to CS.L=1 (64-bit mode, 5-level)", true, false, PROBE_SEL_CODE64, true));
    r.push_back(std::move(five));
  }
  return r;
}

// The composite steps ENTER_PROT / ENTER_REAL as the model sees them: two writes.
paging::Verdict evaluate_pair(const ControlState& before, const Step& first, const Step& second,
                              const paging::TransitionFeatures& f) {
  auto v1 = paging::evaluate(before, first.what, first.value, f);
  if (!v1.allowed) return v1;
  auto v2 = paging::evaluate(v1.after, second.what, second.value, f);
  v2.rule = fmt::format("{}; then {}", v1.rule, v2.rule);
  return v2;
}

std::pair<Step, Step> composite_writes(Via via, const ControlState& s) {
  if (via == Via::EnterProt) {
    return {Step{Write::Cr0, s.cr0 | Cr0::Pe, "CR0.PE 0->1"},
            Step{Write::FarJumpCs, FarJumpOperand::make(false, true, PROBE_SEL_CODE32),
                 "far jump L=0 D=1"}};
  }
  return {Step{Write::FarJumpCs, FarJumpOperand::make(false, false, PROBE_SEL_CODE16),
               "far jump L=0 D=0"},
          Step{Write::Cr0, s.cr0 & ~Cr0::Pe, "CR0.PE 1->0"}};
}

}  // namespace

std::vector<RouteResult> run_routes(Runner& runner) {
  std::vector<RouteResult> results;
  const auto& f = runner.features();
  for (const auto& spec : route_specs(f)) {
    // Each route starts in real mode: the Lab rewound and taken down by ENTER_REAL.
    runner.go(paging::Mode::Real);
    RouteResult rr{spec.name, spec.description, {}};
    ControlState model = runner.state();
    std::optional<std::string> stopped;
    for (const auto& rs : spec.steps) {
      const auto& tables = runner.lab().mode_tables();
      if (!stopped && rs.needs_la57 && !f.la57) {
        stopped =
            "the CPU lacks LA57 (CPUID.(EAX=07H,ECX=0):ECX[16]=0); 5-level paging cannot be "
            "entered";
      }
      MatrixCase c;
      if (rs.via == Via::Write) {
        const Step step{rs.what, rs.value(model, tables), rs.label};
        if (stopped) {
          c.route = spec.name;
          c.before = model;
          c.from = paging::mode_of(model);
          c.step = step;
          c.expected = paging::evaluate(model, step.what, step.value, f);
          c.skip_reason = *stopped;
          runner.finish(c);
        } else {
          c = runner.attempt(step, spec.name);
        }
      } else {
        const auto [first, second] = composite_writes(rs.via, model);
        c.route = spec.name;
        c.before = stopped ? model : runner.state();
        c.from = paging::mode_of(c.before);
        c.step = Step{Write::Cr0, second.what == Write::Cr0 ? second.value : first.value, rs.label};
        c.expected = evaluate_pair(c.before, first, second, f);
        if (stopped) {
          c.skip_reason = *stopped;
        } else {
          try {
            const auto report = runner.lab().command(
                rs.via == Via::EnterProt ? PROBE_CMD_ENTER_PROT : PROBE_CMD_ENTER_REAL);
            c.observed = runner.observe(report);
          } catch (const GuestStopped& e) {
            c.observed.executed = true;
            c.observed.after = c.before;
            c.observed.stopped = e.kind();
            runner.fresh();
          }
        }
        runner.finish(c);
      }
      model = c.expected.after;
      // A listed deviation that left the state the model expects (a refused write the
      // platform ignored instead of faulting) does not stop the route.
      const bool on_track = c.verdict == CaseVerdict::Deviation && c.observed.stopped.empty() &&
                            c.observed.after == c.expected.after;
      if (!stopped && c.verdict != CaseVerdict::Agreed && !on_track) {
        stopped = fmt::format("the route stopped at \"{}\" ({})", rs.label, to_string(c.verdict));
      }
      rr.steps.push_back(std::move(c));
    }
    results.push_back(std::move(rr));
  }
  return results;
}

}  // namespace pagelab::lab::detail

#include "pagelab/fuzz/shrink.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::fuzz {

using paging::bit;
using paging::Pte;

namespace {

// Bits a reduction may clear: flags, ignored and reserved bits, never a frame bit below
// 4 GiB (where the window's frames are) nor PS above level 1 (a 1 GiB page's frame 0
// as a table would be the probe).
std::vector<unsigned> clearable_bits(unsigned level, std::uint64_t v) {
  std::vector<unsigned> out;
  for (unsigned b = 0; b < 64; ++b) {
    if ((v & bit(b)) == 0) continue;
    if (b == 7 && level > 1) continue;
    if (b >= 12 && b < 32) continue;
    out.push_back(b);
  }
  return out;
}

}  // namespace

ShrinkResult shrink(const FuzzCase& c, const CaseOutcome& outcome, const RunOne& run,
                    unsigned max_runs) {
  ShrinkResult best{c, outcome, 0};
  if (!outcome.disagreement) return best;
  const std::string target = outcome.disagreement->signature(c.mode);
  auto attempt = [&](const FuzzCase& candidate) {
    if (best.runs >= max_runs || candidate.same_program(best.minimal)) return false;
    if (check_case(candidate)) return false;
    ++best.runs;
    auto o = run(candidate);
    if (!o.disagreement || o.disagreement->signature(candidate.mode) != target) return false;
    best.minimal = candidate;
    best.outcome = std::move(o);
    return true;
  };
  bool progress = true;
  while (progress && best.runs < max_runs) {
    progress = false;
    // Everything after the disagreement.
    {
      auto cand = best.minimal;
      cand.steps.resize(std::min(cand.steps.size(), best.outcome.disagreement->step + 1));
      if (cand.steps.size() < best.minimal.steps.size()) progress |= attempt(cand);
    }
    for (std::size_t i = best.minimal.steps.size(); i-- > 0;) {
      if (i >= best.minimal.steps.size()) continue;
      auto cand = best.minimal;
      cand.steps.erase(cand.steps.begin() + static_cast<long>(i));
      progress |= attempt(cand);
    }
    for (std::size_t i = best.minimal.entries.size(); i-- > 0;) {
      if (i >= best.minimal.entries.size()) continue;
      auto cand = best.minimal;
      cand.entries.erase(cand.entries.begin() + static_cast<long>(i));
      progress |= attempt(cand);
    }
    // Controls back to the start state.
    {
      const Controls plain;
      auto try_control = [&](auto member, auto value) {
        auto cand = best.minimal;
        if (cand.controls.*member == value) return;
        cand.controls.*member = value;
        progress |= attempt(cand);
      };
      try_control(&Controls::smep, plain.smep);
      try_control(&Controls::smap, plain.smap);
      try_control(&Controls::pge, plain.pge);
      try_control(&Controls::pkru, std::uint32_t{0});
      try_control(&Controls::pke, plain.pke);
      try_control(&Controls::wp, plain.wp);
      try_control(&Controls::pse, plain.pse);
      if (best.minimal.mode != paging::PagingMode::Bits32) try_control(&Controls::nxe, true);
      for (unsigned b = 0; b < 32; ++b) {
        if ((best.minimal.controls.pkru & bit(b)) == 0) continue;
        auto cand = best.minimal;
        cand.controls.pkru &= ~static_cast<std::uint32_t>(bit(b));
        progress |= attempt(cand);
      }
    }
    // Flag bits of entries and of the history's values.
    for (std::size_t i = 0; i < best.minimal.entries.size(); ++i) {
      const auto e = best.minimal.entries[i];
      for (const auto b : clearable_bits(e.level, e.value)) {
        if (i >= best.minimal.entries.size()) break;
        auto cand = best.minimal;
        cand.entries[i].value &= ~bit(b);
        if (cand.entries[i].value == 0)
          cand.entries.erase(cand.entries.begin() + static_cast<long>(i));
        progress |= attempt(cand);
      }
    }
    for (std::size_t i = 0; i < best.minimal.steps.size(); ++i) {
      if (const auto* s = std::get_if<StepSetEntry>(&best.minimal.steps[i])) {
        for (const auto b : clearable_bits(s->level, s->value)) {
          auto cand = best.minimal;
          auto& cs = std::get<StepSetEntry>(cand.steps[i]);
          if ((cs.value & bit(b)) == 0) continue;
          cs.value &= ~bit(b);
          progress |= attempt(cand);
        }
        auto cand = best.minimal;
        if (std::get<StepSetEntry>(cand.steps[i]).host) {
          std::get<StepSetEntry>(cand.steps[i]).host = false;
          progress |= attempt(cand);
        }
      } else if (std::holds_alternative<StepAccess>(best.minimal.steps[i])) {
        auto plainer = [&](auto change) {
          auto cand = best.minimal;
          auto& a = std::get<StepAccess>(cand.steps[i]);
          const auto before = a;
          change(a);
          if (!(a == before)) progress |= attempt(cand);
        };
        plainer([](StepAccess& a) { a.ac = false; });
        plainer([](StepAccess& a) { a.privilege = paging::Privilege::Supervisor; });
        plainer([](StepAccess& a) {
          if (a.type != paging::AccessType::Fetch) a.size = 8;
        });
        plainer([](StepAccess& a) { a.value = 0; });
      }
    }
  }
  return best;
}

std::vector<std::string> expect_lines(const Disagreement& d) {
  if (d.allowed.empty()) return {};
  std::set<std::string> kinds;
  for (const auto& a : d.allowed) kinds.insert(outcome_class(a));
  if (kinds.size() != 1) return {};
  const auto& first = d.allowed.front();
  if (std::holds_alternative<paging::Translation>(first)) return {"expect ok"};
  if (const auto* pf = std::get_if<paging::PageFault>(&first)) {
    for (const auto& a : d.allowed) {
      if (std::get<paging::PageFault>(a).cr2 != pf->cr2) {
        return {fmt::format("expect pf err={:#x}", pf->error_code)};
      }
    }
    return {fmt::format("expect pf err={:#x} cr2={:#x}", pf->error_code, pf->cr2.value())};
  }
  return {"expect gp"};
}

namespace {

// Does the case set bit 8 of a PML4E or PML5E, which AMD reserves and Intel ignores?
bool needs_vendor_rules(const FuzzCase& c) {
  if (c.mode != paging::PagingMode::Level4 && c.mode != paging::PagingMode::Level5) return false;
  const auto top = [](unsigned level, std::uint64_t value) {
    return level >= 4 && (value & Pte::Global) != 0;
  };
  return std::any_of(c.entries.begin(), c.entries.end(),
                     [&](const Entry& e) { return top(e.level, e.value); }) ||
         std::any_of(c.steps.begin(), c.steps.end(), [&](const Step& s) {
           const auto* e = std::get_if<StepSetEntry>(&s);
           return e != nullptr && top(e->level, e->value);
         });
}

}  // namespace

std::string reproducer_text(const FuzzCase& c, const CaseOutcome& outcome,
                            const ReproducerInfo& info) {
  PglOptions o;
  // Replayed elsewhere, and by the oracle alone, under the rules it was found with.
  if (needs_vendor_rules(c)) o.cpu = info.amd ? "amd" : "intel";
  o.header.push_back("pagelab fuzz finding " + info.signature);
  o.header.push_back(fmt::format("seed {} case {} (shard {}, profile {}), backend {}", c.seed,
                                 c.number, info.shard, info.profile, info.backend));
  if (outcome.disagreement) {
    const auto& d = *outcome.disagreement;
    std::vector<std::string> allowed;
    for (const auto& a : d.allowed) allowed.push_back(paging::describe(a));
    std::string did = d.observed;
    if (const auto arrow = did.find("-> "); arrow != std::string::npos) did = did.substr(arrow + 3);
    if (const auto tag = did.find("  [DISAGREES]"); tag != std::string::npos) did.resize(tag);
    o.header.push_back(fmt::format(
        "{} did {}; the architecture allows {}", info.backend, did,
        allowed.empty() ? "(see the report)" : fmt::format("{}", fmt::join(allowed, " or "))));
    std::size_t access = 0;
    for (std::size_t s = 0; s < c.steps.size() && s < d.step; ++s) {
      if (std::holds_alternative<StepAccess>(c.steps[s])) ++access;
    }
    if (d.step < c.steps.size() && std::holds_alternative<StepAccess>(c.steps[d.step])) {
      o.expects.emplace_back(access, expect_lines(d));
    }
  }
  return to_pgl(c, o);
}

}  // namespace pagelab::fuzz

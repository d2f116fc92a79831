#include "pagelab/lab/modes/mode_matrix_case.hpp"

#include "pagelab/lab/report/json.hpp"

#include <fmt/core.h>

#include <array>
#include <utility>

#include "pagelab/lab/machine/probe_report.hpp"
#include "pagelab/lab/modes/deviations.hpp"

namespace pagelab::lab {

namespace {

constexpr std::array<std::pair<paging::Mode, std::string_view>, 8> kShortNames{{
    {paging::Mode::Real, "real"},
    {paging::Mode::Protected, "protected"},
    {paging::Mode::Paging32, "paging32"},
    {paging::Mode::Pae, "pae"},
    {paging::Mode::Compatibility4, "compat4"},
    {paging::Mode::Long64_4Level, "long64"},
    {paging::Mode::Compatibility5, "compat5"},
    {paging::Mode::Long64_5Level, "long64-5"},
}};

std::string fault_text(std::uint32_t vector, std::uint64_t error_code) {
  return fmt::format("{}({:#x})", vector_name(vector), error_code);
}

std::string state_text(const paging::ControlState& s) {
  return fmt::format("CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x} CS.L={} CS.D={}", s.cr0, s.cr3,
                     s.cr4, s.efer, s.cs_l ? 1 : 0, s.cs_d ? 1 : 0);
}

void compare_register(std::vector<std::string>& out, std::string_view name, std::uint64_t want,
                      std::uint64_t got) {
  if (want != got) {
    out.push_back(fmt::format("{} after: model {:#x}, observed {:#x}", name, want, got));
  }
}

}  // namespace

std::string_view to_string(CaseVerdict verdict) {
  switch (verdict) {
    case CaseVerdict::Agreed:
      return "agreed";
    case CaseVerdict::Deviation:
      return "deviation";
    case CaseVerdict::Mismatch:
      return "mismatch";
    case CaseVerdict::Skipped:
      return "skipped";
  }
  return "?";
}

std::string_view short_name(paging::Mode mode) {
  for (const auto& [m, name] : kShortNames) {
    if (m == mode) return name;
  }
  return "inconsistent";
}

std::optional<paging::Mode> mode_from_short_name(std::string_view name) {
  for (const auto& [m, n] : kShortNames) {
    if (n == name) return m;
  }
  return std::nullopt;
}

std::string MatrixCase::expected_text() const {
  if (expected.allowed) return fmt::format("ok -> {}", short_name(expected.mode_after));
  return fault_text(expected.vector.value_or(0), expected.error_code);
}

std::string MatrixCase::observed_text() const {
  if (!observed.executed) return "-";
  if (!observed.stopped.empty()) return "guest stopped";
  if (observed.faulted) return fault_text(observed.vector, observed.error_code);
  return fmt::format("ok -> {}", short_name(paging::mode_of(observed.after)));
}

std::vector<std::string> differences(const MatrixCase& c) {
  std::vector<std::string> out;
  const auto& o = c.observed;
  if (!o.stopped.empty()) {
    out.push_back(fmt::format("the guest stopped: {}", o.stopped));
    return out;
  }
  if (c.expected.allowed && o.faulted) {
    out.push_back(fmt::format("the model allows the write ({}); the CPU raised {}", c.expected.rule,
                              fault_text(o.vector, o.error_code)));
  } else if (!c.expected.allowed && !o.faulted) {
    out.push_back(fmt::format("the model refuses the write with {} ({}); the CPU accepted it",
                              fault_text(c.expected.vector.value_or(0), c.expected.error_code),
                              c.expected.rule));
  } else if (!c.expected.allowed && o.faulted) {
    if (o.vector != c.expected.vector.value_or(0) || o.error_code != c.expected.error_code) {
      out.push_back(fmt::format("the model expects {}, the CPU raised {}",
                                fault_text(c.expected.vector.value_or(0), c.expected.error_code),
                                fault_text(o.vector, o.error_code)));
    }
  }
  // A refused write must leave the state as it was; an accepted one must produce the
  // state the model computes. Either way the expected state is Verdict::after.
  const auto& want = c.expected.after;
  compare_register(out, "CR0", want.cr0, o.after.cr0);
  compare_register(out, "CR3", want.cr3, o.after.cr3);
  compare_register(out, "CR4", want.cr4, o.after.cr4);
  compare_register(out, "EFER", want.efer, o.after.efer);
  if (want.cs_l != o.after.cs_l || want.cs_d != o.after.cs_d) {
    out.push_back(fmt::format("CS after: model L={} D={}, observed L={} D={}", want.cs_l ? 1 : 0,
                              want.cs_d ? 1 : 0, o.after.cs_l ? 1 : 0, o.after.cs_d ? 1 : 0));
  }
  const auto mode_seen = paging::mode_of(o.after);
  if (mode_seen != c.expected.mode_after) {
    out.push_back(fmt::format("mode after: model {}, observed {}",
                              paging::mode_name(c.expected.mode_after),
                              paging::mode_name(mode_seen)));
  }
  if (!o.segment_problem.empty()) out.push_back(o.segment_problem);
  return out;
}

void classify(MatrixCase& c, const std::vector<Deviation>& deviations) {
  c.deviation_id.clear();
  if (c.skip_reason) {
    c.verdict = CaseVerdict::Skipped;
    c.detail = *c.skip_reason;
    return;
  }
  if (!c.observed.executed) {
    c.verdict = CaseVerdict::Skipped;
    c.detail = "not executed";
    return;
  }
  const auto diffs = differences(c);
  if (diffs.empty()) {
    c.verdict = CaseVerdict::Agreed;
    c.detail = c.expected.rule;
    return;
  }
  std::string joined;
  for (const auto& d : diffs) {
    if (!joined.empty()) joined += "; ";
    joined += d;
  }
  if (const auto* dev = find_deviation(c, deviations)) {
    c.verdict = CaseVerdict::Deviation;
    c.deviation_id = dev->id;
    c.detail = fmt::format("{}: breaks {} ({})", dev->id, dev->rule, joined);
    return;
  }
  c.verdict = CaseVerdict::Mismatch;
  c.detail = joined;
}

// The shared verdict words of docs/json.md.
std::string_view json_verdict(CaseVerdict verdict) {
  switch (verdict) {
    case CaseVerdict::Agreed:
      return report::to_string(report::CaseVerdict::Passed);
    case CaseVerdict::Deviation:
      return report::to_string(report::CaseVerdict::KnownDeviation);
    case CaseVerdict::Mismatch:
      return report::to_string(report::CaseVerdict::Failed);
    case CaseVerdict::Skipped:
      return report::to_string(report::CaseVerdict::Skipped);
  }
  return report::to_string(report::CaseVerdict::Failed);
}

std::string MatrixCase::id() const {
  return route.empty() ? fmt::format("{}:{}", short_name(from), step.label) : "route:" + route;
}

nlohmann::json MatrixCase::to_json() const {
  using report::hex;
  nlohmann::json j;
  j["id"] = id();
  j["backend"] = backend;
  if (!route.empty()) j["route"] = route;
  j["from"] = short_name(from);
  j["transition"] = step.label;
  j["write"] = paging::to_string(step.what);
  j["value"] = hex(step.value);
  j["before"] = state_text(before);
  j["rule"] = expected.rule;
  j["expected"] = {{"allowed", expected.allowed},
                   {"text", expected_text()},
                   {"mode_after", short_name(expected.mode_after)},
                   {"after", state_text(expected.after)}};
  if (!expected.allowed) {
    j["expected"]["kind"] = "exception";
    j["expected"]["vector"] = expected.vector.value_or(0);
    j["expected"]["error_code"] = hex(expected.error_code);
  } else {
    j["expected"]["kind"] = "ok";
  }
  nlohmann::json o{{"executed", observed.executed}, {"text", observed_text()}};
  if (observed.executed) {
    o["kind"] = observed.faulted ? "exception" : "ok";
    o["faulted"] = observed.faulted;
    if (observed.faulted) {
      o["vector"] = observed.vector;
      o["error_code"] = hex(observed.error_code);
    }
    o["after"] = state_text(observed.after);
    o["mode_after"] = short_name(paging::mode_of(observed.after));
    if (!observed.stopped.empty()) o["stopped"] = observed.stopped;
  }
  j["observed"] = o;
  j["verdict"] = json_verdict(verdict);
  if (!deviation_id.empty()) j["deviation"] = deviation_id;
  if (!detail.empty()) j["reason"] = detail;
  return j;
}

}  // namespace pagelab::lab

#include "pagelab/lab/tour/tour.hpp"
#include "pagelab/lab/report/json.hpp"

#include <fmt/core.h>

#include <optional>

#include "pagelab/lab/machine/mode_tables.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {

using paging::Cr0;
using paging::Cr4;
using paging::Efer;
using paging::PagingMode;

std::string_view to_string(StopOutcome outcome) {
  switch (outcome) {
    case StopOutcome::Entered:
      return "entered";
    case StopOutcome::Refused:
      return "refused by the platform";
    case StopOutcome::Unsupported:
      return "not supported by the platform";
    case StopOutcome::Failed:
      return "FAILED";
  }
  return "?";
}

bool Tour::ok() const {
  for (const auto& s : stops) {
    if (s.outcome == StopOutcome::Failed) return false;
  }
  return !stops.empty();
}

nlohmann::json Tour::to_json() const {
  nlohmann::json j = report::document("tour");
  j["backend"] = backend;
  j["ok"] = ok();
  j["stops"] = nlohmann::json::array();
  for (const auto& s : stops) {
    // A mode the platform refuses or lacks is a skip with its reason, not a failure.
    const auto verdict = s.outcome == StopOutcome::Entered  ? report::CaseVerdict::Passed
                         : s.outcome == StopOutcome::Failed ? report::CaseVerdict::Failed
                                                            : report::CaseVerdict::Skipped;
    nlohmann::json stop{{"mode", s.mode},
                        {"outcome", std::string(to_string(s.outcome))},
                        {"verdict", report::to_string(verdict)}};
    if (!s.reason.empty()) stop["reason"] = s.reason;
    stop["steps"] = nlohmann::json::array();
    for (const auto& st : s.steps) {
      nlohmann::json step{{"action", st.action}, {"observed", st.report.to_json()}};
      if (!st.failure.empty()) step["failure"] = st.failure;
      stop["steps"].push_back(step);
    }
    j["stops"].push_back(stop);
  }
  return j;
}

namespace {

// What a step must leave behind, by the architecture's rules; nullopt = as expected.
using Expectation = std::function<std::optional<std::string>(const ProbeReport&)>;

Expectation expect_mode(PagingMode paging, unsigned code_bits, bool protected_mode = true) {
  return [=](const ProbeReport& r) -> std::optional<std::string> {
    if (!r.ok()) return fmt::format("the probe caught {}", r.outcome_text());
    if (((r.cr0 & Cr0::Pe) != 0) != protected_mode) {
      return fmt::format("CR0.PE is {} (expected {})", (r.cr0 & Cr0::Pe) != 0 ? 1 : 0,
                         protected_mode ? 1 : 0);
    }
    const auto seen = paging::paging_mode_of(r.cr0, r.cr4, r.efer);
    if (seen != paging) {
      return fmt::format("the registers say {} paging (expected {})", paging::to_string(seen),
                         paging::to_string(paging));
    }
    const bool lma = paging == PagingMode::Level4 || paging == PagingMode::Level5;
    if (((r.efer & Efer::Lma) != 0) != lma) {
      return fmt::format("EFER.LMA is {} (expected {})", lma ? 0 : 1, lma ? 1 : 0);
    }
    if (r.code_bits != code_bits) {
      return fmt::format("running {}-bit code (expected {}-bit)", r.code_bits, code_bits);
    }
    return std::nullopt;
  };
}

Expectation expect_ok() {
  return [](const ProbeReport& r) -> std::optional<std::string> {
    if (!r.ok()) return fmt::format("the probe caught {}", r.outcome_text());
    return std::nullopt;
  };
}

class TourRunner {
 public:
  TourRunner(Lab& lab, const std::function<void(const TourStop&, const TourStep&)>& on_step,
             const std::function<void(const TourStop&)>& on_stop)
      : lab_(lab), on_step_(on_step), on_stop_(on_stop), tables_(lab.mode_tables()) {}

  Tour run() {
    begin("real mode");
    record("boot: the vCPU starts at 0000:8000", lab_.last_report(),
           expect_mode(PagingMode::None, 16, false));
    end();

    begin("protected mode");
    step("set CR0.PE, far jump to the 32-bit code segment", PROBE_CMD_ENTER_PROT, 0,
         expect_mode(PagingMode::None, 32));
    end();
    if (current_.outcome != StopOutcome::Entered) return finish();

    legacy_paging("32-bit paging", PagingMode::Bits32, tables_.bits32.value(),
                  lab_.cpu().paging_features().pse ? Cr4::Pse : 0);
    legacy_paging("PAE paging", PagingMode::Pae, tables_.pae.value(), Cr4::Pae);
    long_mode("IA-32e mode, 4-level paging", PagingMode::Level4, tables_.level4.value(), 0);
    long_mode("IA-32e mode, 5-level paging", PagingMode::Level5, tables_.level5.value(), Cr4::La57);

    begin("back to real mode");
    step("far jump to the 16-bit code segment, clear CR0.PE", PROBE_CMD_ENTER_REAL, 0,
         expect_mode(PagingMode::None, 16, false));
    end();
    return finish();
  }

 private:
  void begin(std::string mode) {
    current_ = TourStop{};
    current_.mode = std::move(mode);
  }
  void end() {
    if (on_stop_) on_stop_(current_);
    tour_.stops.push_back(current_);
  }
  Tour finish() { return tour_; }

  const ProbeReport& record(std::string action, const ProbeReport& report,
                            const Expectation& expect) {
    TourStep s{std::move(action), report, {}};
    if (auto failure = expect(report)) {
      s.failure = *failure;
      if (current_.outcome == StopOutcome::Entered) {
        current_.outcome = StopOutcome::Failed;
        current_.reason = s.action + ": " + *failure;
      }
    }
    current_.steps.push_back(s);
    if (on_step_) on_step_(current_, current_.steps.back());
    return current_.steps.back().report;
  }

  const ProbeReport& step(std::string action, std::uint32_t cmd, std::uint64_t arg,
                          const Expectation& expect, std::uint64_t arg1 = 0) {
    return record(std::move(action), lab_.command(cmd, arg, arg1), expect);
  }

  // A step the architecture allows but a platform may refuse: a fault is recorded as
  // the platform's refusal, not as our failure.
  bool try_enter(std::string action, std::uint32_t cmd, std::uint64_t arg,
                 const Expectation& expect, const std::string& what) {
    const auto report = lab_.command(cmd, arg);
    if (report.faulted()) {
      TourStep s{action, report, {}};
      current_.steps.push_back(s);
      if (on_step_) on_step_(current_, s);
      current_.outcome = StopOutcome::Refused;
      current_.reason =
          fmt::format("{} raised {} in the guest, though the architecture allows it here ({})",
                      what, report.outcome_text(), report.registers_text());
      return false;
    }
    record(std::move(action), report, expect);
    return current_.outcome == StopOutcome::Entered;
  }

  // Back to protected mode with paging off and every paging control cleared, whatever
  // state a refused or failed stop left behind.
  void back_to_flat_protected() {
    auto r = lab_.last_report();
    if ((r.efer & Efer::Lma) != 0 && r.code_bits == 64) {
      r = step("far jump to the 32-bit code segment (compatibility mode)", PROBE_CMD_JUMP_CS,
               PROBE_SEL_CODE32, expect_ok());
    }
    if ((r.cr0 & Cr0::Pg) != 0) {
      r = step("CR0.PG <- 0", PROBE_CMD_WRITE_CR0, r.cr0 & ~Cr0::Pg,
               expect_mode(PagingMode::None, 32));
    }
    if ((r.efer & Efer::Lme) != 0) {
      r = step("EFER.LME <- 0", PROBE_CMD_WRMSR, Efer::Msr, expect_ok(), r.efer & ~Efer::Lme);
    }
    if (r.cr4 != 0) {
      step("CR4 <- 0", PROBE_CMD_WRITE_CR4, 0, expect_mode(PagingMode::None, 32));
    }
  }

  void legacy_paging(const std::string& name, PagingMode mode, std::uint64_t cr3,
                     std::uint64_t cr4_bits) {
    begin(name);
    step(fmt::format("CR3 <- {:#x} (identity map)", cr3), PROBE_CMD_WRITE_CR3, cr3, expect_ok());
    if (cr4_bits != 0) {
      step(fmt::format("CR4 <- {:#x}", cr4_bits), PROBE_CMD_WRITE_CR4, cr4_bits, expect_ok());
    }
    const auto cr0 = lab_.last_report().cr0 | Cr0::Pg;
    try_enter("CR0.PG <- 1", PROBE_CMD_WRITE_CR0, cr0, expect_mode(mode, 32),
              "MOV CR0 setting PG with EFER.LME=0");
    back_to_flat_protected();
    end();
  }

  void long_mode(const std::string& name, PagingMode mode, std::uint64_t cr3,
                 std::uint64_t extra_cr4) {
    begin(name);
    const bool la57 = (extra_cr4 & Cr4::La57) != 0;
    const auto cr4 = Cr4::Pae | extra_cr4;
    if (la57 && !lab_.cpu().paging_features().la57) {
      // Ask anyway: the CPUID table could be wrong either way, and the behaviour is
      // what the tour reports.
      const auto r = lab_.command(PROBE_CMD_WRITE_CR4, cr4);
      current_.steps.push_back({fmt::format("CR4 <- {:#x} (PAE|LA57)", cr4), r, {}});
      if (on_step_) on_step_(current_, current_.steps.back());
      if (r.faulted()) {
        current_.outcome = StopOutcome::Unsupported;
        current_.reason = fmt::format(
            "CPUID.(EAX=7,ECX=0):ECX.LA57 is 0 on this platform, and MOV CR4 setting LA57 raised "
            "{}",
            r.outcome_text());
        end();
        return;
      }
    } else {
      step(fmt::format("CR4 <- {:#x}", cr4), PROBE_CMD_WRITE_CR4, cr4, expect_ok());
    }
    step(fmt::format("CR3 <- {:#x} (identity map)", cr3), PROBE_CMD_WRITE_CR3, cr3, expect_ok());
    step("EFER.LME <- 1", PROBE_CMD_WRMSR, Efer::Msr, expect_ok(),
         lab_.last_report().efer | Efer::Lme);
    const auto cr0 = lab_.last_report().cr0 | Cr0::Pg;
    if (try_enter("CR0.PG <- 1 (activates IA-32e, compatibility mode)", PROBE_CMD_WRITE_CR0, cr0,
                  expect_mode(mode, 32), "MOV CR0 setting PG with EFER.LME=1 and CR4.PAE=1")) {
      step("far jump to the 64-bit code segment", PROBE_CMD_JUMP_CS, PROBE_SEL_CODE64,
           expect_mode(mode, 64));
      step("far jump to the 32-bit code segment (compatibility mode)", PROBE_CMD_JUMP_CS,
           PROBE_SEL_CODE32, expect_mode(mode, 32));
    }
    back_to_flat_protected();
    end();
  }

  Lab& lab_;
  const std::function<void(const TourStop&, const TourStep&)>& on_step_;
  const std::function<void(const TourStop&)>& on_stop_;
  const ModeTables& tables_;
  Tour tour_;
  TourStop current_;
};

}  // namespace

Tour run_tour(Lab& lab, const std::function<void(const TourStop&, const TourStep&)>& on_step,
              const std::function<void(const TourStop&)>& on_stop) {
  return TourRunner(lab, on_step, on_stop).run();
}

}  // namespace pagelab::lab

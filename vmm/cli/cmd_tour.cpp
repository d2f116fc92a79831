// `pagelab tour`: the probe climbs through every mode the platform allows and back.
#include <fmt/core.h>

#include "commands.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/lab.hpp"
#include "pagelab/lab/tour.hpp"

namespace pagelab::cli {

void add_tour(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "tour", "Walk the probe from real mode through every paging mode and back, on the CPU");
  auto json = std::make_shared<bool>(false);
  auto watchdog_ms = std::make_shared<unsigned>(5000);
  cmd->add_flag("--json", *json, "Print JSON instead of the readable report");
  cmd->add_option("--watchdog-ms", *watchdog_ms, "Report a hang after this long without an exit")
      ->check(CLI::Range(10U, 600000U));
  cmd->callback([json, watchdog_ms, &ctx] {
    lab::LabOptions options;
    options.watchdog = std::chrono::milliseconds(*watchdog_ms);
    const auto flavour = kvm::detect_flavour();
    try {
      lab::Lab lab(options);
      if (!*json) {
        fmt::print("pagelab tour on {} ({}, MAXPHYADDR {})\n\n", kvm::describe(flavour),
                   lab.cpu().vendor(), lab.cpu().maxphyaddr());
      }
      auto on_stop = [&](const lab::TourStop& stop) {
        if (*json) return;
        fmt::print("== {}: {}\n", stop.mode, lab::to_string(stop.outcome));
        for (const auto& s : stop.steps) {
          fmt::print("   {:<58} -> {}\n", s.action,
                     s.report.ok() ? s.report.mode_name() : s.report.outcome_text());
          fmt::print("   {:<58}    {}\n", "", s.report.registers_text());
          if (!s.failure.empty()) fmt::print("   !! {}\n", s.failure);
        }
        if (!stop.reason.empty()) fmt::print("   why: {}\n", stop.reason);
        fmt::print("\n");
      };
      const auto tour = lab::run_tour(lab, {}, on_stop);
      if (*json) {
        auto j = tour.to_json();
        j["flavour"] = flavour.name;
        j["vm_exits"] = lab.exits();
        fmt::print("{}\n", j.dump(2));
      } else {
        int entered = 0, refused = 0, failed = 0;
        for (const auto& s : tour.stops) {
          entered += s.outcome == lab::StopOutcome::Entered;
          refused +=
              s.outcome == lab::StopOutcome::Refused || s.outcome == lab::StopOutcome::Unsupported;
          failed += s.outcome == lab::StopOutcome::Failed;
        }
        fmt::print(
            "{} modes entered and verified, {} refused or unsupported by this platform, {} failed "
            "({} VM exits)\n",
            entered, refused, failed, lab.exits());
      }
      ctx.exit_code = tour.ok() ? 0 : 1;
    } catch (const lab::GuestStopped& stop) {
      fmt::print(stderr, "pagelab: the guest stopped abnormally: {}\n{}\n", stop.kind(),
                 stop.report());
      ctx.exit_code = 3;
    }
  });
}

}  // namespace pagelab::cli

// `pagelab tour`: the probe climbs through every mode the platform allows and back.
#include <fmt/core.h>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/backend/backend.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/platform/platform.hpp"
#include "pagelab/lab/tour/tour.hpp"
#include "pagelab/lab/tour/tour_examples.hpp"

namespace pagelab::cli {

void add_tour(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "tour", "Walk the probe from real mode through every paging mode and back, on the CPU");
  auto json = std::make_shared<bool>(false);
  auto watchdog_ms = std::make_shared<unsigned>(5000);
  auto backend = std::make_shared<BackendChoice>();
  cmd->add_flag("--json", *json, "Print JSON instead of the readable report");
  cmd->add_option("--watchdog-ms", *watchdog_ms, "Report a hang after this long without an exit")
      ->check(CLI::Range(10U, 600000U));
  add_backend_option(*cmd, *backend);
  cmd->callback([json, watchdog_ms, backend, &ctx] {
    lab::LabOptions options;
    options.watchdog = std::chrono::milliseconds(*watchdog_ms);
    options.backend = backend->kind_to_run();
    try {
      lab::Lab lab(options);
      const bool on_kvm = lab.backend_name() == "kvm";
      const std::string platform = lab::describe_backend(lab);
      if (!*json) {
        fmt::print("pagelab tour on {} ({}, MAXPHYADDR {})\n\n", platform, lab.cpu().vendor(),
                   lab.cpu().maxphyaddr());
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
      auto tour = lab::run_tour(lab, {}, on_stop);
      tour.backend = std::string(lab.backend_name());
      // The last leg: the worked example and the recursive map, walked by the oracle
      // and run on the CPU (each on its own VM: the experiment engine needs one).
      options.backend = on_kvm ? lab::BackendKind::Kvm : lab::BackendKind::Qemu;
      const auto examples = lab::run_tour_examples(options);
      if (*json) {
        auto j = tour.to_json();
        if (on_kvm) j["flavour"] = kvm::detect_flavour().name;
        j["vm_exits"] = lab.exits();
        j["round_trips"] = {{"count", lab.exits()},
                            {"kind", std::string(lab.backend().round_trip_name())}};
        j["examples"] = lab::tour_examples_json(examples);
        print_json(j);
      } else {
        fmt::print("{}\n", lab::format_tour_examples(examples));
        int entered = 0, refused = 0, failed = 0;
        for (const auto& s : tour.stops) {
          entered += s.outcome == lab::StopOutcome::Entered;
          refused +=
              s.outcome == lab::StopOutcome::Refused || s.outcome == lab::StopOutcome::Unsupported;
          failed += s.outcome == lab::StopOutcome::Failed;
        }
        fmt::print(
            "{} modes entered and verified, {} refused or unsupported by this platform, {} failed "
            "({} {} on {}); worked example and recursive map: {}\n",
            entered, refused, failed, lab.exits(), lab.backend().round_trip_name(),
            lab.backend_name(), lab::tour_examples_ok(examples) ? "as the oracle says" : "FAILED");
      }
      ctx.exit_code = tour.ok() && lab::tour_examples_ok(examples) ? 0 : 1;
    } catch (const lab::NoBackend& e) {
      fmt::print(stderr, "pagelab: {}\n", e.what());
      ctx.exit_code = 1;
    } catch (const lab::GuestStopped& stop) {
      fmt::print(stderr, "pagelab: the guest stopped abnormally: {}\n{}\n", stop.kind(),
                 stop.report());
      ctx.exit_code = 3;
    }
  });
}

}  // namespace pagelab::cli

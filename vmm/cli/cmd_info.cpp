// `pagelab info`: what this machine's KVM is and does.
#include <fmt/core.h>

#include "commands.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/platform.hpp"

namespace pagelab::cli {

namespace {

void print_text(const lab::PlatformReport& r) {
  fmt::print("KVM flavour      {}\n", kvm::describe(r.flavour));
  fmt::print("KVM API version  {}\n", r.api_version);
  fmt::print("CPU vendor       {}\n", r.cpu.vendor());
  fmt::print("address widths   MAXPHYADDR {} bits, linear {} bits\n", r.cpu.maxphyaddr(),
             r.cpu.linear_bits());
  std::string yes, no;
  for (const auto& b : lab::reported_cpuid_bits()) {
    (r.cpu.has(b) ? yes : no) += fmt::format(" {}", b.name);
  }
  fmt::print("CPUID offers    {}\n", yes.empty() ? " (none)" : yes);
  fmt::print("CPUID lacks     {}\n", no.empty() ? " (none)" : no);
  fmt::print("capabilities\n");
  for (const auto& c : r.capabilities) {
    fmt::print("  {:<32} {}\n", c.name, c.value == 0 ? "no" : fmt::format("yes ({})", c.value));
  }
  if (!r.probed) {
    fmt::print("quirks           unknown: the probe could not run: {}\n", r.probe_error);
    return;
  }
  fmt::print("quirks found by running the probe ({}):\n", r.quirks.size());
  for (const auto& q : r.quirks) {
    fmt::print("  {}{}: {}\n", q.deviation ? "deviation " : "", q.id, q.description);
  }
  if (r.quirks.empty()) fmt::print("  none\n");
}

}  // namespace

void add_info(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "info",
      "Show the KVM flavour, capabilities, CPUID paging features, and quirks found by "
      "running the probe");
  auto json = std::make_shared<bool>(false);
  auto no_probe = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->add_flag("--no-probe", *no_probe, "Only query KVM; do not run the probe");
  cmd->callback([json, no_probe, &ctx] {
    const auto report = lab::detect_platform(!*no_probe);
    if (*json) {
      fmt::print("{}\n", report.to_json().dump(2));
    } else {
      print_text(report);
    }
    if (!*no_probe && !report.probed) ctx.exit_code = 1;
  });
}

}  // namespace pagelab::cli

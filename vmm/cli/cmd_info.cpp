// `pagelab info`: what the machine that runs the probe (KVM or QEMU TCG) is and does.
#include <fmt/core.h>
#include <fmt/format.h>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/platform/host_machine.hpp"
#include "pagelab/lab/platform/platform.hpp"
#include "pagelab/lab/report/json.hpp"

namespace pagelab::cli {

namespace {

void print_text(const lab::PlatformReport& r) {
  fmt::print("backend          {}\n", r.on_kvm() ? r.backend : r.backend + " (QEMU TCG, -cpu max)");
  const std::string not_kvm = fmt::format("n/a (the backend is {}, not KVM)", r.backend);
  fmt::print("KVM flavour      {}\n", r.on_kvm() ? kvm::describe(r.flavour) : not_kvm);
  fmt::print("KVM API version  {}\n", r.on_kvm() ? std::to_string(r.api_version) : "n/a");
  fmt::print("runs on          {}\n", lab::detect_host_machine().describe());
  fmt::print("deviation lists  {}\n", fmt::join(lab::platform_keys(r.on_kvm()), ", "));
  fmt::print("CPU vendor       {}\n", r.cpu.vendor());
  fmt::print("address widths   MAXPHYADDR {} bits, linear {} bits\n", r.cpu.maxphyaddr(),
             r.cpu.linear_bits());
  std::string yes, no;
  for (const auto& b : lab::reported_cpuid_bits()) {
    (r.cpu.has(b) ? yes : no) += fmt::format(" {}", b.name);
  }
  fmt::print("CPUID offers    {}\n", yes.empty() ? " (none)" : yes);
  fmt::print("CPUID lacks     {}\n", no.empty() ? " (none)" : no);
  if (!r.on_kvm()) {
    fmt::print("capabilities     {}\n", not_kvm);
  } else {
    fmt::print("capabilities\n");
  }
  for (const auto& c : r.capabilities) {
    fmt::print("  {:<32} {}\n", c.name, c.value == 0 ? "no" : fmt::format("yes ({})", c.value));
  }
  if (!r.probed) {
    fmt::print("quirks           {}\n", r.probe_error.empty()
                                            ? std::string("not probed (--no-probe)")
                                            : "unknown: the probe could not run: " + r.probe_error);
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
      "Show the backend (KVM flavour and capabilities, or QEMU TCG), the CPUID paging "
      "features, and quirks found by running the probe");
  auto json = std::make_shared<bool>(false);
  auto no_probe = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->add_flag("--no-probe", *no_probe,
                "Only query KVM (on QEMU: only boot for CPUID); do not probe for quirks");
  auto backend = std::make_shared<BackendChoice>();
  add_backend_option(*cmd, *backend);
  cmd->callback([json, no_probe, backend, &ctx] {
    const auto report = lab::detect_platform(!*no_probe, backend->kind_to_run());
    if (*json) {
      auto j = lab::report::document("info");
      j.update(report.to_json());
      print_json(j);
    } else {
      print_text(report);
    }
    if (!*no_probe && !report.probed) ctx.exit_code = 1;
  });
}

}  // namespace pagelab::cli

// `pagelab crash`: make the probe stop abnormally on purpose, to see (and test) the
// diagnostics: a triple fault, a hang, or an instruction the platform cannot run.
#include <fmt/core.h>

#include <sstream>

#include "backend_option.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/platform/platform.hpp"
#include "pagelab/lab/report/json.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::cli {

namespace {

// "0f 0b", "0f0b", "0x0f 0x0b": bytes as hex, with or without spaces between them.
std::vector<std::uint8_t> parse_bytes(const std::string& text) {
  std::vector<std::uint8_t> out;
  std::istringstream in(text);
  std::string tok;
  while (in >> tok) {
    if (tok.rfind("0x", 0) == 0 || tok.rfind("0X", 0) == 0) tok = tok.substr(2);
    if (tok.empty() || tok.size() % 2 != 0) {
      throw UsageError(
          fmt::format("--bytes: '{}' is not a whole number of hex bytes", printable(tok)));
    }
    for (std::size_t i = 0; i < tok.size(); i += 2) {
      const auto v = parse_u64("0x" + tok.substr(i, 2), "--bytes");
      out.push_back(static_cast<std::uint8_t>(v));
    }
  }
  if (out.empty()) throw UsageError("--bytes: give at least one byte, e.g. \"cc\"");
  if (out.size() > 15) throw UsageError("--bytes: an x86 instruction is at most 15 bytes");
  return out;
}

}  // namespace

void add_crash(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand(
      "crash", "Make the probe stop abnormally on purpose and show the diagnostics (exit code 3)");
  auto kind = std::make_shared<std::string>();
  auto where = std::make_shared<std::string>("long");
  auto bytes = std::make_shared<std::string>("cc");
  auto json = std::make_shared<bool>(false);
  auto watchdog_ms = std::make_shared<unsigned>(1000);
  auto backend = std::make_shared<BackendChoice>();
  cmd->add_option("kind", *kind, "triple-fault | hang | insn")
      ->required()
      ->check(CLI::IsMember({"triple-fault", "hang", "insn"}));
  cmd->add_option("--in", *where, "Mode to crash in: protected | long")
      ->check(CLI::IsMember({"protected", "long"}));
  cmd->add_option("--bytes", *bytes,
                  "For 'insn': the instruction bytes to run (hex, \"0f 0b\" or \"0f0b\"; default "
                  "\"cc\" = int3); a RET follows them. Exit 3 when it raises an exception or "
                  "stops the guest, 0 when it runs");
  cmd->add_option("--watchdog-ms", *watchdog_ms, "Report a hang after this long")
      ->check(CLI::Range(10U, 600000U));
  cmd->add_flag("--json", *json, "Print the diagnostics as JSON");
  add_backend_option(*cmd, *backend);
  cmd->callback([=, &ctx] {
    auto code = parse_bytes(*bytes);
    code.push_back(0xc3);  // RET back into the probe if the platform runs it
    lab::LabOptions options;
    options.watchdog = std::chrono::milliseconds(*watchdog_ms);
    options.backend = backend->kind_to_run();
    lab::Lab lab(options);
    if (!*json) fmt::print("pagelab crash {} on {}\n", *kind, lab::describe_backend(lab));
    try {
      lab.enter_protected();
      if (*where == "long") lab.enter_long(paging::PagingMode::Level4);
      lab::ProbeReport r;
      if (*kind == "triple-fault") {
        r = lab.command(PROBE_CMD_TRIPLE_FAULT);
      } else if (*kind == "hang") {
        r = lab.command(PROBE_CMD_HANG);
      } else {
        r = lab.command(PROBE_CMD_EXEC, lab.place_code(code).value());
      }
      // Only an instruction can come back: the platform ran it. One that raised an
      // exception (the probe caught it) is still an abnormal stop of that code: exit 3.
      if (*json) {
        auto j = lab::report::document("crash");
        j["backend"] = std::string(lab.backend_name());
        j["ran"] = true;
        j["faulted"] = r.faulted();
        if (r.faulted()) {
          j["kind"] = "exception";
          j["vector"] = r.vector;
          j["error_code"] = lab::report::hex(r.error_code);
        } else {
          j["kind"] = "ok";
        }
        j["outcome"] = r.outcome_text();
        j["mode"] = r.mode_name();
        print_json(j);
      } else {
        fmt::print("the platform ran it: {} ({})\n", r.outcome_text(), r.mode_name());
      }
      ctx.exit_code = r.faulted() ? 3 : 0;
    } catch (const lab::GuestStopped& stop) {
      if (*json) {
        auto j = lab::report::document("crash");
        j.update(stop.json());
        print_json(j);
      } else {
        fmt::print("{}\n", stop.report());
      }
      ctx.exit_code = 3;
    }
  });
}

}  // namespace pagelab::cli

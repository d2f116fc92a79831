#include <fmt/core.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string_view>

#include "commands.hpp"
#include "output.hpp"
#include "pagelab/kvm/error.hpp"
#include "pagelab/lab/report/json.hpp"
#include "pagelab/paging/planted_bug.hpp"

namespace pagelab::cli {

namespace {
int parse_and_run(CLI::App& app, Context& ctx, int argc, const char* const* argv);
}  // namespace

int run(int argc, const char* const* argv) {
  CLI::App app{
      "pagelab: a paging laboratory on KVM. Runs a tiny guest through every x86 paging\n"
      "mode and checks what the CPU does against a reference walker of the architecture.",
      "pagelab"};
  app.require_subcommand(1);
  // The project version from CMake (the top-level CMakeLists.txt defines it for this
  // file only), so `--version` and the man page help2man makes from it never drift.
  app.set_version_flag("--version", "pagelab " PAGELAB_VERSION);
  Context ctx;
  add_info(app, ctx);
  add_tour(app, ctx);
  add_crash(app, ctx);
  add_explain(app, ctx);
  add_decode(app, ctx);
  add_run(app, ctx);
  add_modes(app, ctx);
  add_bench(app, ctx);
  add_matrix(app, ctx);
  add_fuzz(app, ctx);

  const int status = parse_and_run(app, ctx, argc, argv);
  // A report that could not be written (a full disk, /dev/full, a closed pipe) is not
  // a success: check the stream once everything is printed.
  errno = 0;
  const bool flush_failed = std::fflush(stdout) != 0;
  const int err = errno;
  if (flush_failed || std::ferror(stdout) != 0) {
    fmt::print(stderr, "pagelab: error writing the output: {}\n",
               flush_failed && err != 0 ? std::strerror(err) : "a write failed");
    return status == 0 ? 1 : status;
  }
  return status;
}

namespace {

// Test-only (planted_bug.hpp): PAGELAB_PLANTED_BUG=NAME makes the oracle wrong in one
// rule for this process, so tests can show that the matrix and the fuzzer catch a wrong
// judge and that their reproducers fail `pagelab run` the same way. Said on stderr
// every time, so no result of such a run passes for a real one.
void apply_planted_bug() {
  const char* name = std::getenv("PAGELAB_PLANTED_BUG");
  if (name == nullptr || *name == '\0') {
    paging::set_planted_bug(paging::PlantedBug::None);
    return;
  }
  const auto bug = paging::planted_bug_named(name);
  if (!bug) {
    throw UsageError(fmt::format("PAGELAB_PLANTED_BUG={}: not a planted bug (one of: {})",
                                 printable(name, 100),
                                 fmt::join(paging::planted_bug_names(), ", ")));
  }
  paging::set_planted_bug(*bug);
  if (*bug != paging::PlantedBug::None) {
    fmt::print(stderr, "pagelab: PLANTED BUG {} is on: the oracle is deliberately wrong\n", name);
  }
}

// With --json, an error is a JSON document too (docs/json.md): stdout still parses, and
// says what went wrong and the exit status; the one line on stderr stays.
int report_error(int argc, const char* const* argv, const std::string& message, int status) {
  bool json = false;
  for (int i = 1; i < argc; ++i) json = json || std::string_view(argv[i]) == "--json";
  if (json) {
    const std::string command = argc > 1 && argv[1][0] != '-' ? argv[1] : "";
    auto j = lab::report::document(command);
    j["error"] = {{"message", message}, {"exit_status", status}};
    j["exit_status"] = status;
    print_json(j);
  }
  return status;
}

int parse_and_run(CLI::App& app, Context& ctx, int argc, const char* const* argv) {
  try {
    apply_planted_bug();
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports bad input with its own codes; ours is 2, on one line.
    fmt::print(stderr, "pagelab: {} (see 'pagelab --help')\n", printable(e.what(), 1000));
    return report_error(argc, argv, printable(e.what(), 1000), 2);
  } catch (const UsageError& e) {
    fmt::print(stderr, "pagelab: {}\n", printable(e.what(), 1000));
    return report_error(argc, argv, printable(e.what(), 1000), 2);
  } catch (const kvm::KvmError& e) {
    fmt::print(stderr, "pagelab: KVM error: {}\n", printable(e.what(), 1000));
    return report_error(argc, argv, "KVM error: " + printable(e.what(), 1000), 1);
  } catch (const std::exception& e) {
    fmt::print(stderr, "pagelab: error: {}\n", printable(e.what(), 1000));
    return report_error(argc, argv, printable(e.what(), 1000), 1);
  }
  return ctx.exit_code;
}

}  // namespace

}  // namespace pagelab::cli

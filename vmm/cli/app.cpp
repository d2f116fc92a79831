#include <fmt/core.h>

#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "pagelab/kvm/error.hpp"

namespace pagelab::cli {

int run(int argc, const char* const* argv) {
  CLI::App app{
      "pagelab: a paging laboratory on KVM. Runs a tiny guest through every x86 paging\n"
      "mode and checks what the CPU does against a reference walker of the architecture.",
      "pagelab"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "pagelab 0.1.0");
  Context ctx;
  add_info(app, ctx);
  add_tour(app, ctx);
  add_crash(app, ctx);
  add_explain(app, ctx);
  add_decode(app, ctx);
  add_run(app, ctx);
  add_modes(app, ctx);
  add_bench(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 reports bad input with its own codes; ours is 2, on one line.
    fmt::print(stderr, "pagelab: {} (see 'pagelab --help')\n", e.what());
    return 2;
  } catch (const UsageError& e) {
    fmt::print(stderr, "pagelab: {}\n", e.what());
    return 2;
  } catch (const kvm::KvmError& e) {
    fmt::print(stderr, "pagelab: KVM error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "pagelab: error: {}\n", e.what());
    return 1;
  }
  return ctx.exit_code;
}

}  // namespace pagelab::cli

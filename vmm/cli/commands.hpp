#pragma once
// Each subcommand lives in its own cmd_<name>.cpp and registers itself on the app
// through one add_<name>() function listed in app.cpp.
#include <CLI/CLI.hpp>

#include <stdexcept>
#include <string>

namespace pagelab::cli {

// Bad input from the user: printed as one line, exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Shared by every command: the exit code a callback wants (0 unless it says).
struct Context {
  int exit_code = 0;
};

// Parses "0x1f", "31", "0b101", with '_' or '\'' allowed as digit separators.
// Throws UsageError naming `what` on anything else.
std::uint64_t parse_u64(const std::string& text, const std::string& what);

void add_info(CLI::App& app, Context& ctx);
void add_tour(CLI::App& app, Context& ctx);
void add_crash(CLI::App& app, Context& ctx);
void add_explain(CLI::App& app, Context& ctx);
// `decode` owns the subcommand; `decode pte` is added by the paging model's CLI file.
void add_decode(CLI::App& app, Context& ctx);
void add_decode_pte(CLI::App& decode, Context& ctx);
// `run FILE...`: scenario files (cmd_run.cpp).
void add_run(CLI::App& app, Context& ctx);
void add_modes(CLI::App& app, Context& ctx);
// `bench`: the experiment engine's throughput (cmd_bench.cpp).
void add_bench(CLI::App& app, Context& ctx);
// `matrix`: the exhaustive permission matrix (cmd_matrix.cpp).
void add_matrix(CLI::App& app, Context& ctx);
// `fuzz`: random page tables judged by the oracle, findings shrunk (cmd_fuzz.cpp).
void add_fuzz(CLI::App& app, Context& ctx);

// Entry point shared by main() and the in-process CLI tests.
int run(int argc, const char* const* argv);

}  // namespace pagelab::cli

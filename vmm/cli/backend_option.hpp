#pragma once
// `--backend kvm|qemu|auto` (and, for `run`, `all`): one option, one parser and one
// error message for every command that runs the probe.
#include <CLI/CLI.hpp>

#include <string>

#include "pagelab/lab/backend/backend.hpp"

namespace pagelab::cli {

// What the user chose (set by add_backend_option).
struct BackendChoice {
  std::string text = "auto";
  bool allow_all = false;  // `run` compares every available backend
  [[nodiscard]] bool all() const { return allow_all && text == "all"; }
  // Kvm, Qemu or Auto (`all` gives Auto); throws UsageError (one line, exit 2) naming
  // the choices on anything else.
  // An explicit kvm where /dev/kvm cannot be used is a UsageError naming the
  // alternatives (QEMU TCG, scripts/nested-kvm.sh).
  [[nodiscard]] lab::BackendKind kind() const;
  // kind(), for a command about to run the probe: when auto will pick QEMU because
  // KVM is unusable, says so first, on stderr, once.
  [[nodiscard]] lab::BackendKind kind_to_run() const;
};

// Adds --backend to `cmd`. The value is checked when the command runs (kind()), so the
// error is ours, on one line.
void add_backend_option(CLI::App& cmd, BackendChoice& choice, bool allow_all = false);

}  // namespace pagelab::cli

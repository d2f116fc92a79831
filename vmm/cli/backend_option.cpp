#include "backend_option.hpp"

#include <fmt/core.h>

#include "commands.hpp"

namespace pagelab::cli {

lab::BackendKind BackendChoice::kind() const {
  if (all()) return lab::BackendKind::Auto;
  try {
    return lab::parse_backend_kind(text);
  } catch (const std::invalid_argument&) {
    throw UsageError(fmt::format("unknown backend '{}' (choose kvm, qemu{} auto{})", text,
                                 allow_all ? "," : " or", allow_all ? " or all" : ""));
  }
}

void add_backend_option(CLI::App& cmd, BackendChoice& choice, bool allow_all) {
  choice.allow_all = allow_all;
  std::string help = "kvm, qemu (QEMU TCG, -cpu max) or auto (KVM where /dev/kvm works, else QEMU)";
  if (allow_all) help += "; all: every backend available here, compared case by case";
  cmd.add_option("--backend", choice.text, help)->default_str(choice.text);
}

}  // namespace pagelab::cli

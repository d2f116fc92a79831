#include "backend_option.hpp"

#include <fmt/core.h>

#include "commands.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"

namespace pagelab::cli {

lab::BackendKind BackendChoice::kind() const {
  if (all()) return lab::BackendKind::Auto;
  lab::BackendKind kind{};
  try {
    kind = lab::parse_backend_kind(text);
  } catch (const std::invalid_argument&) {
    throw UsageError(fmt::format("unknown backend '{}' (choose kvm, qemu{} auto{})", text,
                                 allow_all ? "," : " or", allow_all ? " or all" : ""));
  }
  if (kind == lab::BackendKind::Kvm) {
    if (auto why = kvm::System::unavailable_reason()) {
      throw UsageError(
          fmt::format("backend kvm unavailable: {}; --backend qemu runs on QEMU TCG, and "
                      "scripts/nested-kvm.sh runs a real KVM inside QEMU",
                      *why));
    }
  }
  return kind;
}

lab::BackendKind BackendChoice::kind_to_run() const {
  const auto k = kind();
  if (k != lab::BackendKind::Auto || all()) return k;
  const auto why = kvm::System::unavailable_reason();
  if (!why || !lab::find_qemu_binary()) return k;
  // Said once, on stderr, so that --json output stays one document.
  static bool said = false;
  if (!said) {
    said = true;
    fmt::print(stderr,
               "pagelab: no /dev/kvm ({}): running on QEMU TCG; scripts/nested-kvm.sh runs a real "
               "KVM inside QEMU\n",
               *why);
  }
  return k;
}

void add_backend_option(CLI::App& cmd, BackendChoice& choice, bool allow_all) {
  choice.allow_all = allow_all;
  std::string help = "kvm, qemu (QEMU TCG, -cpu max) or auto (KVM where /dev/kvm works, else QEMU)";
  if (allow_all) help += "; all: every backend available here, compared case by case";
  cmd.add_option("--backend", choice.text, help)->default_str(choice.text);
}

}  // namespace pagelab::cli

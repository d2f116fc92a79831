#include "pagelab/lab/backend/backend.hpp"

#include <fmt/core.h>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/backend/kvm_backend.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"

namespace pagelab::lab {

BackendKind parse_backend_kind(std::string_view text) {
  if (text == "kvm") return BackendKind::Kvm;
  if (text == "qemu") return BackendKind::Qemu;
  if (text == "auto") return BackendKind::Auto;
  throw std::invalid_argument(fmt::format("unknown backend '{}' (choose kvm, qemu or auto)", text));
}

std::optional<std::string> backend_unavailable_reason(BackendKind kind) {
  std::optional<std::string> kvm_why, qemu_why;
  if (kind != BackendKind::Qemu) kvm_why = kvm::System::unavailable_reason();
  if (kind != BackendKind::Kvm && !find_qemu_binary()) {
    qemu_why = fmt::format("{} is not installed (not found on $PATH)", qemu_binary_name());
  }
  switch (kind) {
    case BackendKind::Kvm:
      return kvm_why;
    case BackendKind::Qemu:
      return qemu_why;
    case BackendKind::Auto:
      break;
  }
  if (kvm_why && qemu_why) return fmt::format("KVM: {}; QEMU: {}", *kvm_why, *qemu_why);
  return std::nullopt;
}

BackendKind resolve_backend_kind(BackendKind kind) {
  if (kind != BackendKind::Auto) return kind;
  return kvm::System::unavailable_reason() ? BackendKind::Qemu : BackendKind::Kvm;
}

std::string_view backend_name(BackendKind kind) {
  return resolve_backend_kind(kind) == BackendKind::Kvm ? "kvm" : "qemu-tcg";
}

std::unique_ptr<Backend> make_backend(BackendKind kind, std::size_t memory_bytes) {
  if (kind == BackendKind::Kvm) return std::make_unique<KvmBackend>(memory_bytes);
  QemuOptions qemu;
  qemu.memory_bytes = memory_bytes;
  if (kind == BackendKind::Qemu) return std::make_unique<QemuBackend>(qemu);
  const auto kvm_why = kvm::System::unavailable_reason();
  if (!kvm_why) return std::make_unique<KvmBackend>(memory_bytes);
  if (!find_qemu_binary()) {
    throw NoBackend(fmt::format("no backend available: KVM: {}; QEMU: {} is not installed",
                                *kvm_why, qemu_binary_name()));
  }
  return std::make_unique<QemuBackend>(qemu);
}

}  // namespace pagelab::lab

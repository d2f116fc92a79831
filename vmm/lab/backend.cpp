#include "pagelab/lab/backend.hpp"

#include <fmt/core.h>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/kvm_backend.hpp"
#include "pagelab/lab/qemu_backend.hpp"

namespace pagelab::lab {

BackendKind parse_backend_kind(std::string_view text) {
  if (text == "kvm") return BackendKind::Kvm;
  if (text == "qemu") return BackendKind::Qemu;
  if (text == "auto") return BackendKind::Auto;
  throw std::invalid_argument(fmt::format("unknown backend '{}' (choose kvm, qemu or auto)", text));
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

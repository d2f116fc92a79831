#pragma once
// Tests that need a backend run where it is usable and are skipped, with the reason
// printed, where it is not; one wording for every test layer.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"

namespace pagelab::test {

// Why QEMU cannot run here, or nothing when it can.
inline std::optional<std::string> qemu_missing() {
  if (lab::find_qemu_binary()) return std::nullopt;
  return "needs " + lab::qemu_binary_name() + " (not found on $PATH)";
}

// Why KVM cannot run here, or nothing when it can.
inline std::optional<std::string> kvm_missing() {
  if (auto why = kvm::System::unavailable_reason()) return "needs /dev/kvm: " + *why;
  return std::nullopt;
}

// Fixtures whose every test needs QEMU.
class QemuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = qemu_missing()) GTEST_SKIP() << *why;
  }
};

// Fixtures whose every test needs KVM.
class KvmTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kvm_missing()) GTEST_SKIP() << *why;
  }
};

}  // namespace pagelab::test

#pragma once
// What the machine that runs the probe is and does. On KVM: flavour, API version,
// capabilities, the CPUID paging features it offers a guest; on QEMU TCG the CPUID the
// guest executes. Both: quirks found by running the probe (detected by behaviour,
// never assumed from the flavour's name).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/backend/backend.hpp"
#include "pagelab/lab/machine/cpu_features.hpp"

namespace pagelab::lab {

struct CapabilityValue {
  std::string name;  // "KVM_CAP_SYNC_REGS"
  int value = 0;     // KVM_CHECK_EXTENSION's answer; 0 = absent
};

struct Quirk {
  std::string id;           // stable, e.g. "legacy-paging-refused"
  std::string description;  // one line, with the observation that proves it
  bool deviation = false;   // true when the platform disagrees with the architecture
};

struct PlatformReport {
  std::string backend = "kvm";  // Backend::name(): "kvm" or "qemu-tcg"
  // KVM only (empty / 0 on QEMU, "n/a" in reports).
  kvm::Flavour flavour;
  int api_version = 0;
  std::vector<CapabilityValue> capabilities;
  // KVM: the table KVM_GET_SUPPORTED_CPUID offers; QEMU: what the guest executes.
  PlatformCpu cpu;
  std::vector<Quirk> quirks;
  bool probed = false;  // false when the probe could not run (quirks unknown)
  std::string probe_error;
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] bool has_quirk(std::string_view id) const;
  [[nodiscard]] bool on_kvm() const { return backend == "kvm"; }
};

// KVM: queries KVM and, when `run_probe`, boots the probe to detect quirks; throws
// KvmError when /dev/kvm cannot be used. QEMU: boots the probe for the CPUID (always)
// and the quirks (when `run_probe`); throws what the backend throws. Auto: KVM where
// /dev/kvm works, else QEMU.
PlatformReport detect_platform(bool run_probe = true, BackendKind kind = BackendKind::Kvm);

class Lab;
// One line naming what runs the probe: "kvm_pvm (modules: ...)" on KVM,
// "qemu-tcg (QEMU TCG, -cpu max)" on QEMU.
std::string describe_backend(const Lab& lab);

}  // namespace pagelab::lab

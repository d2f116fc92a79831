#pragma once
// What this machine's KVM is and does: flavour, API version, capabilities, the CPUID
// paging features it offers a guest, and quirks found by running the probe (detected
// by behaviour, never assumed from the flavour's name).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/kvm/flavour.hpp"
#include "pagelab/lab/cpu_features.hpp"

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
  kvm::Flavour flavour;
  int api_version = 0;
  std::vector<CapabilityValue> capabilities;
  PlatformCpu cpu;
  std::vector<Quirk> quirks;
  bool probed = false;  // false when the probe could not run (quirks unknown)
  std::string probe_error;
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] bool has_quirk(std::string_view id) const;
};

// Queries KVM and, when `run_probe`, boots the probe to detect quirks. Throws KvmError
// when /dev/kvm cannot be used.
PlatformReport detect_platform(bool run_probe = true);

}  // namespace pagelab::lab

#include "pagelab/kvm/flavour.hpp"

#include <fmt/format.h>
#include <array>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>

namespace pagelab::kvm {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 4> kModules = {"kvm", "kvm_intel", "kvm_amd", "kvm_pvm"};
// Vendor modules, in the order a name is chosen if (unexpectedly) several are loaded.
constexpr std::array<std::string_view, 3> kVendorModules = {"kvm_intel", "kvm_amd", "kvm_pvm"};

// Parameters that change how guest paging is virtualised (TDP vs shadow) or which
// guest modes run natively.
constexpr std::array<std::pair<std::string_view, std::string_view>, 9> kParameters = {{
    {"kvm", "tdp_mmu"},
    {"kvm", "nx_huge_pages"},
    {"kvm", "ignore_msrs"},
    {"kvm_intel", "ept"},
    {"kvm_intel", "unrestricted_guest"},
    {"kvm_intel", "vpid"},
    {"kvm_amd", "npt"},
    {"kvm_amd", "nested"},
    {"kvm_pvm", "pvm_native"},
}};

std::optional<std::string> read_parameter(const fs::path& file) {
  std::ifstream in(file);
  std::string value;
  if (!in || !std::getline(in, value)) {
    return std::nullopt;
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) {
    value.pop_back();
  }
  return value;
}

}  // namespace

Flavour detect_flavour(const std::string& sys_module_dir) {
  Flavour flavour;
  const fs::path root(sys_module_dir);
  std::error_code ec;
  for (const auto module : kModules) {
    if (fs::is_directory(root / module, ec)) {
      flavour.modules.emplace_back(module);
    }
  }
  for (const auto vendor : kVendorModules) {
    if (fs::is_directory(root / vendor, ec)) {
      flavour.name = std::string(vendor);
      break;
    }
  }
  for (const auto& [module, parameter] : kParameters) {
    if (auto value = read_parameter(root / module / "parameters" / parameter)) {
      flavour.parameters.emplace(fmt::format("{}.{}", module, parameter), std::move(*value));
    }
  }
  return flavour;
}

std::string describe(const Flavour& flavour) {
  std::vector<std::string> params;
  for (const auto& [key, value] : flavour.parameters) {
    params.push_back(fmt::format("{}={}", key, value));
  }
  std::string text =
      fmt::format("{} (modules: {}", flavour.name,
                  flavour.modules.empty() ? std::string("none")
                                          : fmt::format("{}", fmt::join(flavour.modules, ", ")));
  if (!params.empty()) {
    text += fmt::format("; {}", fmt::join(params, ", "));
  }
  return text + ")";
}

}  // namespace pagelab::kvm

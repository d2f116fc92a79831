#include "pagelab/kvm/flavour.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace pagelab::kvm {
namespace {

namespace fs = std::filesystem;

// A throw-away /sys/module look-alike.
class FakeSysModule {
 public:
  FakeSysModule() {
    root_ = fs::temp_directory_path() /
            ("pagelab-sysmodule-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    fs::create_directories(root_);
  }
  FakeSysModule(const FakeSysModule&) = delete;
  FakeSysModule& operator=(const FakeSysModule&) = delete;
  ~FakeSysModule() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void module(const std::string& name) { fs::create_directories(root_ / name); }
  void parameter(const std::string& module, const std::string& name, const std::string& value) {
    fs::create_directories(root_ / module / "parameters");
    std::ofstream(root_ / module / "parameters" / name) << value;
  }
  [[nodiscard]] std::string path() const { return root_.string(); }

 private:
  static inline int counter_ = 0;
  fs::path root_;
};

TEST(Flavour, EmptyTreeIsUnknown) {
  const FakeSysModule sys;
  const Flavour flavour = detect_flavour(sys.path());
  EXPECT_EQ(flavour.name, "unknown");
  EXPECT_TRUE(flavour.modules.empty());
  EXPECT_TRUE(flavour.parameters.empty());
}

TEST(Flavour, AmdWithNptAndTdpMmu) {
  FakeSysModule sys;
  sys.module("kvm");
  sys.module("kvm_amd");
  sys.module("unrelated");
  sys.parameter("kvm", "tdp_mmu", "Y\n");
  sys.parameter("kvm_amd", "npt", "1\n");
  sys.parameter("kvm_amd", "something_else", "7\n");
  const Flavour flavour = detect_flavour(sys.path());
  EXPECT_EQ(flavour.name, "kvm_amd");
  EXPECT_EQ(flavour.modules, (std::vector<std::string>{"kvm", "kvm_amd"}));
  EXPECT_EQ(flavour.parameters.at("kvm.tdp_mmu"), "Y");
  EXPECT_EQ(flavour.parameters.at("kvm_amd.npt"), "1");
  EXPECT_EQ(flavour.parameters.count("kvm_amd.something_else"), 0u);
}

TEST(Flavour, IntelWithEpt) {
  FakeSysModule sys;
  sys.module("kvm");
  sys.module("kvm_intel");
  sys.parameter("kvm_intel", "ept", "N\n");
  const Flavour flavour = detect_flavour(sys.path());
  EXPECT_EQ(flavour.name, "kvm_intel");
  EXPECT_EQ(flavour.parameters.at("kvm_intel.ept"), "N");
  EXPECT_NE(describe(flavour).find("kvm_intel.ept=N"), std::string::npos) << describe(flavour);
}

TEST(Flavour, Pvm) {
  FakeSysModule sys;
  sys.module("kvm");
  sys.module("kvm_pvm");
  sys.parameter("kvm", "tdp_mmu", "N\n");
  const Flavour flavour = detect_flavour(sys.path());
  EXPECT_EQ(flavour.name, "kvm_pvm");
  EXPECT_EQ(flavour.modules, (std::vector<std::string>{"kvm", "kvm_pvm"}));
}

TEST(Flavour, RealSysModuleNamesTheLoadedVendorModule) {
  if (!fs::is_directory("/sys/module/kvm")) {
    GTEST_SKIP() << "no /sys/module/kvm on this machine";
  }
  const Flavour flavour = detect_flavour();
  int vendors = 0;
  for (const char* vendor : {"kvm_intel", "kvm_amd", "kvm_pvm"}) {
    if (fs::is_directory(fs::path("/sys/module") / vendor)) {
      ++vendors;
      EXPECT_EQ(flavour.name, vendor);
    }
  }
  if (vendors == 0) {
    EXPECT_EQ(flavour.name, "unknown");
  }
  EXPECT_EQ(flavour.modules.front(), "kvm");
  // tdp_mmu exists on every x86 KVM since 5.10 (kernel/arch/x86/kvm/mmu).
  if (fs::exists("/sys/module/kvm/parameters/tdp_mmu")) {
    EXPECT_EQ(flavour.parameters.count("kvm.tdp_mmu"), 1u);
  }
}

}  // namespace
}  // namespace pagelab::kvm

// `pagelab tour`, `info` and `crash`, run as the real binary.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/kvm/system.hpp"

namespace pagelab::test {
namespace {

class KvmCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  }
};

TEST_F(KvmCli, TourSucceedsAndReachesSixtyFourBitMode) {
  const auto r = run_pagelab({"tour"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "64-bit mode, 4-level paging")) << r.out;
  EXPECT_TRUE(contains(r.out, "== back to real mode: entered")) << r.out;
}

TEST_F(KvmCli, TourJsonIsValid) {
  const auto r = run_pagelab({"tour", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["flavour"], kvm::detect_flavour().name);
}

TEST_F(KvmCli, InfoJsonNamesTheFlavourAndFeatures) {
  const auto r = run_pagelab({"info", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["flavour"]["name"], kvm::detect_flavour().name);
  EXPECT_EQ(j["api_version"], 12);
  for (const char* f : {"PSE", "PAE", "PGE", "PAT", "PSE-36", "NX", "1GB-pages", "PCID", "INVPCID",
                        "SMEP", "SMAP", "PKU", "LA57"}) {
    EXPECT_TRUE(j["cpu"]["features"].contains(f)) << f;
  }
  EXPECT_TRUE(j["cpu"]["maxphyaddr"].is_number());
  EXPECT_TRUE(j["cpu"]["linear_address_bits"].is_number());
  EXPECT_TRUE(j["probed"].get<bool>()) << j.dump(2);
}

TEST_F(KvmCli, CrashTripleFaultExitsThreeWithDisassembly) {
  const auto r = run_pagelab({"crash", "triple-fault"});
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "triple fault")) << r.out;
  // kvm_amd INITs the vCPU before reporting a shutdown: the state is lost there, and
  // the report must say so instead of disassembling the reset vector.
  if (kvm::detect_flavour().name == "kvm_amd") {
    EXPECT_TRUE(contains(r.out, "the state at the fault is lost")) << r.out;
    EXPECT_TRUE(contains(r.out, "last state the probe reported")) << r.out;
    EXPECT_FALSE(contains(r.out, "ud2")) << r.out;
    return;
  }
  EXPECT_TRUE(contains(r.out, "ud2")) << r.out;
  EXPECT_TRUE(contains(r.out, "RIP=")) << r.out;
}

TEST_F(KvmCli, CrashHangExitsThree) {
  const auto r = run_pagelab({"crash", "hang", "--watchdog-ms", "200"});
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "hang")) << r.out;
}

TEST_F(KvmCli, CrashJsonIsValid) {
  const auto r = run_pagelab({"crash", "triple-fault", "--in", "protected", "--json"});
  EXPECT_EQ(r.status, 3) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  if (kvm::detect_flavour().name == "kvm_amd") {  // see above: the state is lost there
    EXPECT_TRUE(j.at("state_lost").get<bool>()) << j.dump(2);
    EXPECT_TRUE(j.at("code").is_null()) << j.dump(2);
    EXPECT_EQ(j.at("last_known").at("code_bits"), 32) << j.dump(2);
    return;
  }
  EXPECT_FALSE(j.at("state_lost").get<bool>()) << j.dump(2);
  ASSERT_TRUE(j.at("code").at("instruction").is_object()) << j.dump(2);
  EXPECT_EQ(j.at("code").at("instruction").at("mnemonic"), "ud2") << j.dump(2);
}

TEST(CliUsage, BadInputExitsTwoWithOneLine) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"crash", "bogus"},
                                             {"tour", "--watchdog-ms", "0"},
                                             {"nonsense"},
                                             {"crash", "insn", "--bytes", "zz"}}) {
    const auto r = run_pagelab(args);
    EXPECT_EQ(r.status, 2) << args[0] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace pagelab::test

// `--backend kvm|qemu|auto` on every command that runs the probe (and `all` on `run`):
// the backend's name in every report and JSON result, one-line usage errors, three-way
// `run --backend all`, known deviations reported as known and failing under --strict.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "pagelab/kvm/flavour.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"

namespace pagelab::test {
namespace {

class OnQemu : public QemuTest {};
class OnKvm : public KvmTest {};

// Without /dev/kvm an explicit kvm stops before anything runs, on one line that names
// what can run instead.
TEST(BackendOption, KvmWithoutDevKvmNamesTheAlternativesOnEveryCommand) {
  if (!kvm_missing()) GTEST_SKIP() << "KVM works here";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"run", "--backend", "kvm", example("worked_example.pgl")},
           {"bench", "--backend", "kvm"},
           {"info", "--backend", "kvm"},
           {"crash", "triple-fault", "--backend", "kvm"},
           {"tour", "--backend", "kvm"}}) {
    const auto r = run_pagelab(args);
    EXPECT_EQ(r.status, 2) << args[0] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "backend kvm unavailable")) << args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "--backend qemu")) << args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "scripts/nested-kvm.sh")) << args[0] << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args[0] << ": " << r.out;
  }
}

// Where auto falls back to QEMU, the first thing said is that, and why.
TEST(BackendOption, AutoPickingQemuSaysWhyFirst) {
  if (!kvm_missing()) GTEST_SKIP() << "KVM works here: auto picks it";
  if (auto why = qemu_missing()) GTEST_SKIP() << *why;
  const auto r = run_pagelab({"info", "--no-probe"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.rfind("pagelab: no /dev/kvm (", 0), 0u) << r.err;
  EXPECT_TRUE(contains(r.err, "running on QEMU TCG; scripts/nested-kvm.sh runs a real KVM"))
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(contains(r.out, "qemu-tcg")) << r.out;
  // Said on stderr: --json stays one document.
  const auto j = run_pagelab({"info", "--no-probe", "--json"});
  EXPECT_TRUE(nlohmann::json::accept(j.out)) << j.out;
  EXPECT_TRUE(contains(j.err, "running on QEMU TCG")) << j.err;
  // An explicit qemu is what was asked for: nothing to explain.
  EXPECT_TRUE(run_pagelab({"info", "--no-probe", "--backend", "qemu"}).err.empty());
}

TEST(BackendOption, NonsenseIsAOneLineUsageErrorOnEveryCommand) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"run", "--backend", "nonsense", example("worked_example.pgl")},
           {"bench", "--backend", "nonsense"},
           {"info", "--backend", "nonsense"},
           {"crash", "triple-fault", "--backend", "nonsense"},
           {"tour", "--backend", "nonsense"}}) {
    const auto r = run_pagelab(args);
    EXPECT_EQ(r.status, 2) << args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, "unknown backend 'nonsense'")) << args[0] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args[0] << ": " << r.err;
    EXPECT_TRUE(r.out.empty()) << args[0] << ": " << r.out;
  }
  // `all` is run's alone.
  const auto r = run_pagelab({"bench", "--backend", "all"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "choose kvm, qemu or auto")) << r.err;
  EXPECT_TRUE(contains(run_pagelab({"run", "--backend", "x", example("nx_fetch.pgl")}).err,
                       "choose kvm, qemu, auto or all"));
}

TEST(BackendOption, HelpNamesTheChoices) {
  for (const char* cmd : {"run", "bench", "info", "crash", "tour"}) {
    const auto r = run_pagelab({cmd, "--help"});
    EXPECT_EQ(r.status, 0) << cmd;
    EXPECT_TRUE(contains(r.out, "--backend")) << cmd;
  }
  EXPECT_TRUE(contains(run_pagelab({"run", "--help"}).out, "known deviation"));
}

// Every example, every backend available here: no case fails (exit 0).
TEST(RunBackendAll, ExamplesExitZeroWithAPerCaseClassification) {
  auto args = example_files();
  args.insert(args.begin(), {"run", "--backend", "all"});
  const auto r = run_pagelab(args);
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, " 0 failed")) << r.out;
  EXPECT_TRUE(contains(r.out, "oracle vs ")) << r.out;
  // Every backend is either compared or listed with the reason it is missing.
  EXPECT_TRUE(contains(r.out, "backend kvm ")) << r.out;
  EXPECT_TRUE(contains(r.out, "backend qemu-tcg ")) << r.out;
  if (!kvm::System::unavailable_reason()) {
    EXPECT_TRUE(contains(r.out, "\n       kvm ")) << r.out;
  }
  if (lab::find_qemu_binary()) {
    EXPECT_TRUE(contains(r.out, "\n       qemu-tcg ")) << r.out;
  }
}

TEST(RunBackendAll, JsonHasTheSameStructure) {
  const auto r = run_pagelab({"run", "--backend", "all", "--json", example("stale_translation.pgl"),
                              example("worked_example.pgl")});
  EXPECT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "all");
  ASSERT_EQ(j["backends"].size(), 2u);
  EXPECT_EQ(j["backends"][0]["name"], "kvm");
  EXPECT_EQ(j["backends"][1]["name"], "qemu-tcg");
  for (const auto& b : j["backends"]) {
    EXPECT_TRUE(b["available"].get<bool>() || b.contains("reason")) << b.dump();
  }
  EXPECT_EQ(j["counts"]["failed"], 0);
  ASSERT_EQ(j["scenarios"].size(), 2u);
  const auto& s = j["scenarios"][0];
  ASSERT_FALSE(s["cases"].empty());
  for (const auto& c : s["cases"]) {
    EXPECT_TRUE(c.contains("oracle")) << c.dump();
    EXPECT_TRUE(c.contains("verdict")) << c.dump();
    for (const auto& name : s["backends"]) {
      EXPECT_TRUE(c["backends"].contains(name.get<std::string>())) << c.dump();
    }
  }
  // The oracle's own result, then one per backend, each naming its backend.
  ASSERT_EQ(s["results"].size(), s["backends"].size() + 1);
  EXPECT_EQ(s["results"][0]["backend"], "oracle");
}

TEST_F(OnQemu, RunOnQemuNamesTheBackend) {
  const auto r = run_pagelab({"run", "--backend", "qemu", example("worked_example.pgl")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "(qemu-tcg)")) << r.out;
  EXPECT_TRUE(contains(r.out, "on qemu-tcg)")) << r.out;
  const auto j = nlohmann::json::parse(
      run_pagelab({"run", "--backend", "qemu", "--json", example("worked_example.pgl")}).out);
  EXPECT_EQ(j["backend"], "qemu-tcg");
  EXPECT_EQ(j["scenarios"][0]["backend"], "qemu-tcg");
}

TEST_F(OnKvm, RunOnKvmNamesTheBackend) {
  const auto r = run_pagelab({"run", "--backend", "kvm", "--json", example("worked_example.pgl")});
  EXPECT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "kvm");
  EXPECT_EQ(j["scenarios"][0]["backend"], "kvm");
}

// A departure the platform shows is reported as a known deviation (exit 0) and, with
// the list emptied (--strict), fails (exit 1). Where the platform keeps to the
// architecture there is nothing to report, and the case must simply pass.
void expect_known_then_strict_fails(const std::string& backend, const std::string& file,
                                    const std::string& id) {
  const auto r = run_pagelab({"run", "--backend", backend, file});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  if (!contains(r.out, "known deviation " + id + "; details: pagelab run ")) {
    EXPECT_TRUE(contains(r.out, " 0 skipped")) << r.out;
    GTEST_SKIP() << backend << " keeps to the architecture here: no " << id << " to report";
  }
  EXPECT_TRUE(contains(r.out, " known deviation")) << r.out;
  const auto all = run_pagelab({"run", "--backend", "all", file});
  EXPECT_EQ(all.status, 0) << all.out << all.err;
  // One line per known deviation by default; the rule and reproducer with -v.
  EXPECT_TRUE(contains(all.out, "known deviation " + id + " on ")) << all.out;
  EXPECT_FALSE(contains(all.out, "reproduce: pagelab run")) << all.out;
  const auto verbose = run_pagelab({"run", "--backend", "all", "-v", file});
  EXPECT_TRUE(contains(verbose.out, "-> known deviation: ")) << verbose.out;
  EXPECT_TRUE(contains(verbose.out, "reproduce: pagelab run")) << verbose.out;

  const auto strict = run_pagelab({"run", "--backend", backend, "--strict", file});
  EXPECT_EQ(strict.status, 1) << strict.out;
  EXPECT_TRUE(contains(strict.out, "not in the list of known deviations")) << strict.out;
  const auto strict_all = run_pagelab({"run", "--backend", "all", "--strict", file});
  EXPECT_EQ(strict_all.status, 1) << strict_all.out;
  EXPECT_TRUE(contains(strict_all.out, "FAIL")) << strict_all.out;
}

TEST_F(OnQemu, TcgReservedBitErrorCodeIsAKnownDeviation) {
  expect_known_then_strict_fails("qemu", example("reserved_bit51.pgl"),
                                 "tcg-reserved-bit-error-code-without-p");
}

TEST_F(OnQemu, InfoAndRunAgreeOnTheReservedBitErrorCode) {
  // Both find it by behaviour, independently: info's quirk probe and run's engine.
  const auto info = nlohmann::json::parse(run_pagelab({"info", "--backend", "qemu", "--json"}).out);
  bool quirk = false;
  for (const auto& q : info["quirks"]) quirk = quirk || q["id"] == "reserved-bit-pf-without-p";
  const auto r = run_pagelab({"run", "--backend", "qemu", example("reserved_bit51.pgl")});
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(quirk, contains(r.out, "tcg-reserved-bit-error-code-without-p")) << r.out;
}

TEST_F(OnKvm, ShadowMmuForeignWriterIsAKnownDeviation) {
  expect_known_then_strict_fails("kvm", example("foreign_writer.pgl"),
                                 "shadow-mmu-host-pte-write-invisible");
}

TEST_F(OnQemu, ForeignWriterAgreesWithTheArchitectureOnQemu) {
  // TCG keeps no shadow of the tables: INVLPG makes the host's write visible.
  const auto r =
      run_pagelab({"run", "--backend", "qemu", "--strict", example("foreign_writer.pgl")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "2 passed, 0 failed, 0 skipped")) << r.out;
}

TEST_F(OnQemu, InfoReportsTheQemuCpu) {
  const auto r = run_pagelab({"info", "--backend", "qemu"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "backend          qemu-tcg")) << r.out;
  EXPECT_TRUE(contains(r.out, "KVM flavour      n/a")) << r.out;
  EXPECT_TRUE(contains(r.out, "KVM API version  n/a")) << r.out;
  EXPECT_TRUE(contains(r.out, "CPUID offers")) << r.out;
  EXPECT_TRUE(contains(r.out, "quirks found by running the probe")) << r.out;
  const auto j = nlohmann::json::parse(run_pagelab({"info", "--backend", "qemu", "--json"}).out);
  EXPECT_EQ(j["backend"], "qemu-tcg");
  EXPECT_TRUE(j["flavour"].is_null());
  EXPECT_TRUE(j["api_version"].is_null());
  EXPECT_TRUE(j["probed"].get<bool>());
  EXPECT_GT(j["cpu"]["maxphyaddr"].get<int>(), 0);
}

TEST_F(OnKvm, InfoOnKvmNamesTheBackend) {
  const auto r = run_pagelab({"info", "--backend", "kvm", "--no-probe", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "kvm");
  EXPECT_EQ(j["flavour"]["name"], kvm::detect_flavour().name);
}

TEST_F(OnQemu, CrashOnQemuGivesDiagnosticsAndExitsThree) {
  const auto r = run_pagelab({"crash", "triple-fault", "--backend", "qemu"});
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "qemu-tcg")) << r.out;
  EXPECT_TRUE(contains(r.out, "CR0")) << r.out;
  const auto j = run_pagelab({"crash", "triple-fault", "--backend", "qemu", "--json"});
  EXPECT_EQ(j.status, 3) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out)["backend"], "qemu-tcg");
}

TEST_F(OnQemu, BenchOnQemuReportsTheSameFigures) {
  const auto r =
      run_pagelab({"bench", "--backend", "qemu", "--json", "--batch", "200", "--rounds", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["backend"], "qemu-tcg");
  EXPECT_EQ(j["round_trips"], "doorbells");
  ASSERT_FALSE(j["workloads"].empty());
  for (const auto& w : j["workloads"]) {
    EXPECT_EQ(w["accesses"], 200) << w.dump();
    EXPECT_EQ(w["vm_exits"], 1) << w.dump();  // one batch, one doorbell
    EXPECT_EQ(w["disagreements"], 0) << w.dump();
  }
  EXPECT_EQ(j["accesses_per_vm_exit"].get<double>(), 200.0);
  const auto text = run_pagelab({"bench", "--backend", "qemu", "--batch", "100", "--rounds", "1"});
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "backend: qemu-tcg")) << text.out;
  EXPECT_TRUE(contains(text.out, "accesses per doorbell: 100")) << text.out;
}

TEST_F(OnKvm, BenchOnKvmNamesTheBackend) {
  const auto r = run_pagelab({"bench", "--backend", "kvm", "--batch", "100", "--rounds", "1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "backend: kvm")) << r.out;
  EXPECT_TRUE(contains(r.out, "accesses per VM exit: 100")) << r.out;
}

}  // namespace
}  // namespace pagelab::test

// `pagelab bench` reports the fuzzer's throughput from the same run as its other
// figures: checked fuzz cases per second and accesses per exit, in JSON and in text.
// Only presence and sign are checked: no assertion on wall-clock time.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "pagelab/fuzz/throughput.hpp"
#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/machine/lab.hpp"

namespace pagelab::test {
namespace {

class BenchFuzzQemu : public QemuTest {};

TEST_F(BenchFuzzQemu, JsonHasTheFuzzersCasesPerSecondAndAccessesPerExit) {
  const auto r = run_pagelab({"bench", "--backend", "qemu", "--json", "--batch", "100", "--rounds",
                              "1", "--fuzz-cases", "300"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.contains("fuzz")) << r.out;
  const auto& f = j["fuzz"];
  EXPECT_EQ(f["cases"], 300) << f.dump();
  EXPECT_EQ(f["mode"], "4level");
  EXPECT_GT(f["cases_per_second"].get<double>(), 0.0) << f.dump();
  EXPECT_GT(f["accesses_per_vm_exit"].get<double>(), 0.0) << f.dump();
  // Every case makes at least one access, and a batch holds many cases.
  EXPECT_GE(f["accesses"].get<std::uint64_t>(), 300u) << f.dump();
  EXPECT_LT(f["vm_exits"].get<std::uint64_t>(), 300u) << f.dump();
  EXPECT_LE(f["failed"].get<std::uint64_t>() + f["known_deviation"].get<std::uint64_t>() +
                f["skipped"].get<std::uint64_t>(),
            300u)
      << f.dump();
  // The fuzzer's checked accesses per second, and the mixed workload's as a multiple of
  // it (the yardstick), from the same run's figures.
  const double per_s = f["accesses"].get<double>() / f["seconds"].get<double>();
  EXPECT_NEAR(f["checked_accesses_per_second"].get<double>(), per_s, per_s * 1e-9) << f.dump();
  double mixed = 0;
  for (const auto& w : j["workloads"]) {
    if (w["name"] == "mixed") mixed = w["checked_per_second"].get<double>();
  }
  ASSERT_GT(mixed, 0.0) << j.dump();
  // Waiting for the guest is part of the run's time, never all of it (the host judges).
  EXPECT_GT(f["guest_seconds"].get<double>(), 0.0) << f.dump();
  EXPECT_LT(f["guest_seconds"].get<double>(), f["seconds"].get<double>()) << f.dump();
  EXPECT_NEAR(f["mixed_over_fuzz"].get<double>(), mixed / per_s, mixed / per_s * 1e-9) << f.dump();
  // CPU time: this process judged every case, and QEMU ran them in its own process.
  const double host = f["host_cpu_seconds"].get<double>();
  const double backend = f["backend_cpu_seconds"].get<double>();
  EXPECT_GT(host, 0.0) << f.dump();
  EXPECT_GT(backend, 0.0) << f.dump();
  const auto cpus = f["usable_cpus"].get<double>();
  ASSERT_GE(cpus, 1.0) << f.dump();
  // The bounds are the usable CPUs over the CPU time per case: all of it, or QEMU's alone.
  EXPECT_NEAR(f["cases_per_second_bound"].get<double>(), cpus * 300 / (host + backend),
              1e-6 * cpus * 300 / (host + backend))
      << f.dump();
  EXPECT_NEAR(f["cases_per_second_bound_backend_alone"].get<double>(), cpus * 300 / backend,
              1e-6 * cpus * 300 / backend)
      << f.dump();
}

TEST_F(BenchFuzzQemu, TextNamesTheFuzzersThroughput) {
  const auto r = run_pagelab(
      {"bench", "--backend", "qemu", "--batch", "100", "--rounds", "1", "--fuzz-cases", "200"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "fuzz (4level, seed 1, every profile): 200 checked cases")) << r.out;
  EXPECT_TRUE(contains(r.out, "cases/s")) << r.out;
  EXPECT_TRUE(contains(r.out, "per doorbell")) << r.out;
  EXPECT_TRUE(contains(r.out, "checked accesses/s; mixed's checked/s is ")) << r.out;
  EXPECT_TRUE(contains(r.out, "% of its time waiting for the guest, ")) << r.out;
  EXPECT_TRUE(contains(r.out, "fuzz: CPU per case: ")) << r.out;
  EXPECT_TRUE(contains(r.out, " us in QEMU; with ")) << r.out;
  EXPECT_TRUE(contains(r.out, " with a host that cost nothing")) << r.out;
}

TEST_F(BenchFuzzQemu, FuzzModeChoosesThePagingModeOfTheCases) {
  const auto r = run_pagelab({"bench", "--backend", "qemu", "--json", "--batch", "100", "--rounds",
                              "1", "--fuzz-cases", "200", "--fuzz-mode", "32bit"});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto f = nlohmann::json::parse(r.out)["fuzz"];
  EXPECT_EQ(f["mode"], "32bit") << f.dump();
  EXPECT_EQ(f["cases"], 200) << f.dump();
  EXPECT_FALSE(f.contains("unavailable")) << f.dump();
}

// Bench runs the cases as a campaign does, in batches of ModeRunner::run: each batch is
// one round trip at least.
TEST_F(BenchFuzzQemu, TheCasesRunInBatchesAsACampaignRunsThem) {
  lab::LabOptions options;
  options.backend = lab::BackendKind::Qemu;
  lab::Lab lab(options);
  const auto t = fuzz::measure_throughput(
      lab, {.mode = paging::PagingMode::Bits32, .seed = 1, .cases = 40, .batch_cases = 10});
  ASSERT_FALSE(t.unavailable) << *t.unavailable;
  EXPECT_EQ(t.cases, 40u);
  EXPECT_GE(t.exits, 4u);
}

TEST(BenchFuzz, ABadFuzzCaseCountOrModeIsAUsageError) {
  EXPECT_EQ(run_pagelab({"bench", "--fuzz-cases", "2000000"}).status, 2);
  EXPECT_EQ(run_pagelab({"bench", "--fuzz-cases", "many"}).status, 2);
  const auto r = run_pagelab({"bench", "--fuzz-mode", "6level"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "--fuzz-mode: unknown mode '6level'")) << r.err;
}

// A mode the machine cannot enter is reported with its reason, and the bench's own
// figures still come out (PVM refuses legacy paging; a CPU without LA57 has no 5-level).
TEST(BenchFuzz, AModeTheMachineCannotEnterIsNamedWithItsReason) {
  if (auto why = kvm::System::unavailable_reason()) GTEST_SKIP() << "needs /dev/kvm: " << *why;
  lab::LabOptions options;
  options.backend = lab::BackendKind::Kvm;
  std::optional<std::string> refused_mode;
  {
    lab::Lab lab(options);
    for (const auto mode : {paging::PagingMode::Pae, paging::PagingMode::Level5}) {
      lab.reset();
      if (fuzz::measure_throughput(lab, {.mode = mode, .cases = 1}).unavailable) {
        refused_mode = fuzz::mode_keyword(mode);
        break;
      }
    }
  }
  if (!refused_mode) GTEST_SKIP() << "this KVM enters PAE and 5-level paging";
  const auto r = run_pagelab({"bench", "--backend", "kvm", "--json", "--batch", "100", "--rounds",
                              "1", "--fuzz-cases", "50", "--fuzz-mode", *refused_mode});
  ASSERT_EQ(r.status, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["fuzz"]["mode"], *refused_mode);
  EXPECT_FALSE(j["fuzz"]["unavailable"].get<std::string>().empty()) << j["fuzz"].dump();
  EXPECT_EQ(j["workloads"].size(), 7u);
}

}  // namespace
}  // namespace pagelab::test

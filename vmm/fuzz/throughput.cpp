#include "pagelab/fuzz/throughput.hpp"

#include <algorithm>
#include <chrono>
#include <vector>

#include "pagelab/campaign/cpu_time.hpp"
#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/fuzz/generator.hpp"
#include "pagelab/fuzz/runner.hpp"

namespace pagelab::fuzz {

Throughput measure_throughput(lab::Lab& lab, const ThroughputOptions& options) {
  GeneratorConfig config;
  config.profile = Profile::All;
  config.modes = {options.mode};
  config.features = lab.cpu().paging_features();
  std::vector<FuzzCase> cases;
  cases.reserve(options.cases);
  for (std::uint64_t n = 0; n < options.cases; ++n) {
    cases.push_back(generate_case(config, options.seed, n));
  }
  ModeRunner runner(lab, options.mode);
  // A warm-up batch of other case numbers, untimed: the first batch pays for the
  // model's first full copy of guest RAM and a cold translation cache, which a campaign
  // pays once.
  std::vector<FuzzCase> warm_up;
  for (std::uint64_t n = 0; n < std::min<std::uint64_t>(options.cases, 256); ++n) {
    warm_up.push_back(generate_case(config, options.seed, options.cases + n));
  }
  runner.run(warm_up);
  Throughput t;
  t.mode = mode_keyword(options.mode);
  // Generating is not part of the figure, entering the mode neither: `pagelab fuzz`
  // pays both once per campaign.
  const auto exits_before = lab.exits();
  const auto guest_before = lab.guest_time();
  const auto backend_before = lab.backend().outside_cpu_time();
  const auto host_before = campaign::thread_cpu_time();
  const auto start = std::chrono::steady_clock::now();
  const auto outcomes = runner.run(cases);
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.host_cpu_seconds =
      std::chrono::duration<double>(campaign::thread_cpu_time() - host_before).count();
  t.backend_cpu_seconds =
      std::chrono::duration<double>(lab.backend().outside_cpu_time() - backend_before).count();
  t.guest_seconds = std::chrono::duration<double>(lab.guest_time() - guest_before).count();
  t.exits = lab.exits() - exits_before;
  for (const auto& o : outcomes) {
    ++t.cases;
    t.accesses += o.accesses_run;
    if (o.verdict == CaseOutcome::Verdict::Failed) ++t.failed;
    if (o.verdict == CaseOutcome::Verdict::KnownDeviation) ++t.known;
    if (o.verdict == CaseOutcome::Verdict::Skipped) ++t.skipped;
  }
  return t;
}

}  // namespace pagelab::fuzz

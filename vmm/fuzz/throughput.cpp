#include "pagelab/fuzz/throughput.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <iterator>
#include <optional>
#include <span>
#include <vector>

#include "pagelab/campaign/affinity.hpp"
#include "pagelab/campaign/cpu_time.hpp"
#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/fuzz/generator.hpp"
#include "pagelab/fuzz/runner.hpp"

namespace pagelab::fuzz {

namespace {

// Keeps the calling thread and `lab`'s machine on the CPU the thread is on while it
// lives, then lets both run anywhere they may again.
class SharedCpu {
 public:
  explicit SharedCpu(lab::Lab& lab) : lab_(lab) {
    const int cpu = ::sched_getcpu();
    if (cpu < 0) return;
    pin_.emplace(static_cast<unsigned>(cpu));
    if (pin_->pinned()) lab_.backend().share_cpu(static_cast<unsigned>(cpu));
  }
  ~SharedCpu() {
    if (!pin_ || !pin_->pinned()) return;
    pin_.reset();  // the thread's own CPUs first: the machine goes back to those
    lab_.backend().share_cpu(std::nullopt);
  }
  SharedCpu(const SharedCpu&) = delete;
  SharedCpu& operator=(const SharedCpu&) = delete;

 private:
  lab::Lab& lab_;
  std::optional<campaign::ThreadPin> pin_;
};

}  // namespace

Throughput measure_throughput(lab::Lab& lab, const ThroughputOptions& options) {
  const auto per_batch = std::max<std::size_t>(options.batch_cases, 1);
  GeneratorConfig config;
  config.profile = Profile::All;
  config.modes = {options.mode};
  config.features = lab.cpu().paging_features();
  std::vector<FuzzCase> cases;
  cases.reserve(options.cases);
  for (std::uint64_t n = 0; n < options.cases; ++n) {
    cases.push_back(generate_case(config, options.seed, n));
  }
  Throughput t;
  t.mode = mode_keyword(options.mode);
  // Entering the mode is where a machine refuses it, as a campaign finds out.
  std::optional<ModeRunner> entered;
  try {
    entered.emplace(lab, options.mode);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    t.unavailable = what.substr(0, what.find('\n'));
    return t;
  }
  auto& runner = *entered;
  // As a campaign's worker runs: this thread and the machine on one CPU.
  const SharedCpu shared(lab);
  // A warm-up batch of other case numbers, untimed: the first batch pays for the
  // model's first full copy of guest RAM and a cold translation cache, which a campaign
  // pays once.
  std::vector<FuzzCase> warm_up;
  for (std::uint64_t n = 0; n < std::min<std::uint64_t>(options.cases, per_batch); ++n) {
    warm_up.push_back(generate_case(config, options.seed, options.cases + n));
  }
  runner.run(warm_up);
  // Generating is not part of the figure, entering the mode neither: `pagelab fuzz`
  // pays both once per campaign.
  const auto exits_before = lab.exits();
  const auto guest_before = lab.guest_time();
  const auto backend_before = lab.backend().outside_cpu_time();
  const auto host_before = campaign::thread_cpu_time();
  const auto start = std::chrono::steady_clock::now();
  std::vector<CaseOutcome> outcomes;
  outcomes.reserve(cases.size());
  const std::span<const FuzzCase> all(cases);
  for (std::size_t i = 0; i < all.size(); i += per_batch) {
    auto batch = runner.run(all.subspan(i, std::min(per_batch, all.size() - i)));
    std::move(batch.begin(), batch.end(), std::back_inserter(outcomes));
  }
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

#pragma once
// Which CPUs a thread runs on: a worker and the machine it drives take turns (the host
// judges while the guest waits, the guest runs while the host waits), so they share one
// CPU rather than bouncing the guest's memory and every wake-up between two.
#include <cstddef>
#include <optional>
#include <vector>

namespace pagelab::campaign {

// The CPUs the calling thread may run on (its affinity mask), in ascending order; empty
// where the kernel will not tell.
std::vector<unsigned> usable_cpu_ids();

// Keeps the calling thread on one CPU while it lives, then gives it back the CPUs it
// had. Where the kernel refuses (a CPU outside a cgroup's set), the thread stays as it
// was and pinned() says so.
class ThreadPin {
 public:
  explicit ThreadPin(unsigned cpu);
  ~ThreadPin();
  ThreadPin(const ThreadPin&) = delete;
  ThreadPin& operator=(const ThreadPin&) = delete;
  [[nodiscard]] bool pinned() const { return pinned_; }

 private:
  std::vector<unsigned> before_;
  bool pinned_ = false;
};

// The CPU a worker's thread and its machines share: worker j of `jobs` gets CPU j of
// `cpus` when there is one for each; nullopt otherwise (more workers than CPUs: the
// kernel places them).
std::optional<unsigned> cpu_for_worker(std::size_t j, std::size_t jobs,
                                       const std::vector<unsigned>& cpus);

}  // namespace pagelab::campaign

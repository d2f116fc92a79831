#include "pagelab/campaign/affinity.hpp"

#include <sched.h>

namespace pagelab::campaign {

namespace {

bool set_mask(const std::vector<unsigned>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const auto c : cpus) {
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  }
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

}  // namespace

std::vector<unsigned> usable_cpu_ids() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<unsigned> out;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

ThreadPin::ThreadPin(unsigned cpu) : before_(usable_cpu_ids()) {
  pinned_ = !before_.empty() && set_mask({cpu});
}

ThreadPin::~ThreadPin() {
  if (pinned_) (void)set_mask(before_);
}

std::optional<unsigned> cpu_for_worker(std::size_t j, std::size_t jobs,
                                       const std::vector<unsigned>& cpus) {
  if (jobs == 0 || jobs > cpus.size() || j >= jobs) return std::nullopt;
  return cpus[j];
}

}  // namespace pagelab::campaign

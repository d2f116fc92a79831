#include "pagelab/campaign/cpu_time.hpp"

#include <ctime>
#include <thread>

#include "pagelab/campaign/affinity.hpp"

namespace pagelab::campaign {

std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

unsigned usable_cpus() {
  if (const auto ids = usable_cpu_ids(); !ids.empty()) return static_cast<unsigned>(ids.size());
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

}  // namespace pagelab::campaign

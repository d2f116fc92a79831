#pragma once
// CPU time, for per-core figures of campaigns and benchmarks.
#include <chrono>

namespace pagelab::campaign {

// The calling thread's CPU time: a worker's share of pagelab (and, on KVM, where the
// guest runs inside KVM_RUN, of the guest too).
std::chrono::nanoseconds thread_cpu_time();

// CPUs this process may run on (its affinity mask), at least 1.
unsigned usable_cpus();

}  // namespace pagelab::campaign

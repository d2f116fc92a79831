// The CPU figures of campaigns and `pagelab bench`: a thread's own CPU time, and the
// CPUs the process may use (its affinity, not the machine's count).
#include <gtest/gtest.h>
#include <sched.h>

#include <thread>

#include "pagelab/campaign/cpu_time.hpp"

namespace pc = pagelab::campaign;

TEST(CpuTime, AThreadsCpuTimeGrowsWithItsWorkNotWithItsSleep) {
  const auto before = pc::thread_cpu_time();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto slept = pc::thread_cpu_time() - before;
  volatile std::uint64_t sink = 0;
  const auto busy_from = pc::thread_cpu_time();
  while (pc::thread_cpu_time() - busy_from < std::chrono::milliseconds(20)) sink = sink + 1;
  EXPECT_GE(pc::thread_cpu_time() - busy_from, std::chrono::milliseconds(20));
  // 50 ms asleep cost far less than 50 ms of CPU.
  EXPECT_LT(slept, std::chrono::milliseconds(25));
}

TEST(CpuTime, UsableCpusFollowTheAffinityMask) {
  EXPECT_GE(pc::usable_cpus(), 1u);
  // In a thread pinned to one CPU, one CPU is usable, whatever the machine has.
  unsigned pinned = 0;
  std::thread t([&] {
    cpu_set_t mine;
    CPU_ZERO(&mine);
    ASSERT_EQ(::sched_getaffinity(0, sizeof mine, &mine), 0);
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &mine)) ++first;
    ASSERT_LT(first, CPU_SETSIZE);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    pinned = pc::usable_cpus();
  });
  t.join();
  EXPECT_EQ(pinned, 1u);
}

// Keeping a worker on a CPU: the CPUs a thread may use, a pin that gives them back, and
// which CPU worker j gets (one each, or none when there are more workers than CPUs).
#include <gtest/gtest.h>
#include <sched.h>

#include <algorithm>
#include <thread>

#include "pagelab/campaign/affinity.hpp"
#include "pagelab/campaign/cpu_time.hpp"

namespace pc = pagelab::campaign;

TEST(Affinity, UsableCpuIdsAreTheMasksInOrder) {
  const auto ids = pc::usable_cpu_ids();
  ASSERT_FALSE(ids.empty());
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(ids.size(), pc::usable_cpus());
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(::sched_getaffinity(0, sizeof mask, &mask), 0);
  for (const auto c : ids) EXPECT_TRUE(CPU_ISSET(c, &mask)) << c;
}

TEST(Affinity, AThreadPinRunsTheThreadOnItsCpuAndGivesTheOthersBack) {
  std::vector<unsigned> before, during, after;
  int ran_on = -1;
  bool pinned = false;
  std::thread t([&] {
    before = pc::usable_cpu_ids();
    {
      const pc::ThreadPin pin(before.back());
      pinned = pin.pinned();
      during = pc::usable_cpu_ids();
      ran_on = ::sched_getcpu();
    }
    after = pc::usable_cpu_ids();
  });
  t.join();
  ASSERT_TRUE(pinned);
  EXPECT_EQ(during, std::vector<unsigned>{before.back()});
  EXPECT_EQ(ran_on, static_cast<int>(before.back()));
  EXPECT_EQ(after, before);
}

TEST(Affinity, APinToACpuOutsideTheMaskIsRefusedAndChangesNothing) {
  std::vector<unsigned> before, after;
  bool pinned = true;
  std::thread t([&] {
    before = pc::usable_cpu_ids();
    {
      const pc::ThreadPin pin(CPU_SETSIZE - 1);  // no such CPU here
      pinned = pin.pinned();
    }
    after = pc::usable_cpu_ids();
  });
  t.join();
  EXPECT_FALSE(pinned);
  EXPECT_EQ(after, before);
}

TEST(Affinity, EachWorkerGetsACpuOfItsOwnOrNone) {
  const std::vector<unsigned> cpus{2, 5, 7};
  EXPECT_EQ(pc::cpu_for_worker(0, 3, cpus), 2u);
  EXPECT_EQ(pc::cpu_for_worker(2, 3, cpus), 7u);
  EXPECT_EQ(pc::cpu_for_worker(1, 2, cpus), 5u);
  // More workers than CPUs: the kernel places them all.
  EXPECT_EQ(pc::cpu_for_worker(0, 4, cpus), std::nullopt);
  EXPECT_EQ(pc::cpu_for_worker(0, 1, {}), std::nullopt);
  EXPECT_EQ(pc::cpu_for_worker(3, 3, cpus), std::nullopt);
}

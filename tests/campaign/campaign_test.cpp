#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "pagelab/campaign/atomic_file.hpp"
#include "pagelab/campaign/duration.hpp"
#include "pagelab/campaign/progress.hpp"
#include "pagelab/campaign/shard.hpp"

namespace pc = pagelab::campaign;
using namespace std::chrono_literals;

namespace {
pc::Environment env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}
}  // namespace

TEST(Shard, KOfNOwnsEveryNthCaseAndShardsCoverEverythingOnce) {
  const auto a = pc::parse_shard("1/3", env_of({}));
  const auto b = pc::parse_shard("2/3", env_of({}));
  const auto c = pc::parse_shard("3/3", env_of({}));
  for (std::uint64_t n = 0; n < 100; ++n) {
    EXPECT_EQ(int(a.owns(n)) + int(b.owns(n)) + int(c.owns(n)), 1) << n;
  }
  EXPECT_TRUE(a.owns(0));
  EXPECT_TRUE(b.owns(1));
  EXPECT_EQ(c.describe(), "3/3");
}

TEST(Shard, BadShardsAreRefusedWithAReason) {
  for (const char* bad : {"3/2", "0/2", "1/0", "2", "a/b", "1/2/3", "-1/2", "", "1/2000000"}) {
    EXPECT_THROW(pc::parse_shard(bad, env_of({})), std::invalid_argument) << bad;
  }
}

TEST(Shard, AutoReadsSlurmAndKubernetesArrayIndices) {
  EXPECT_TRUE(pc::parse_shard("auto", env_of({})).whole());
  auto s = pc::parse_shard("auto",
                           env_of({{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  EXPECT_EQ(s.describe(), "4/4");
  s = pc::parse_shard("auto", env_of({{"SLURM_ARRAY_TASK_ID", "11"},
                                      {"SLURM_ARRAY_TASK_MIN", "10"},
                                      {"SLURM_ARRAY_TASK_COUNT", "4"}}));
  EXPECT_EQ(s.describe(), "2/4");
  s = pc::parse_shard("auto",
                      env_of({{"JOB_COMPLETION_INDEX", "0"}, {"PAGELAB_SHARD_COUNT", "8"}}));
  EXPECT_EQ(s.describe(), "1/8");
  EXPECT_THROW(pc::parse_shard("auto", env_of({{"JOB_COMPLETION_INDEX", "0"}})),
               std::invalid_argument);
  EXPECT_THROW(pc::parse_shard(
                   "auto", env_of({{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})),
               std::invalid_argument);
}

TEST(Duration, UnitsAddUp) {
  EXPECT_EQ(pc::parse_duration("90"), 90s);
  EXPECT_EQ(pc::parse_duration("90s"), 90s);
  EXPECT_EQ(pc::parse_duration("10m"), 600s);
  EXPECT_EQ(pc::parse_duration("1h30m"), 5400s);
  for (const char* bad : {"", "0", "0s", "m", "10x", "1h30", "-5s", "99999999999h"}) {
    EXPECT_THROW(pc::parse_duration(bad), std::invalid_argument) << bad;
  }
}

TEST(AtomicFile, WritesTheWholeFileAndLeavesNoTemporary) {
  const auto dir = std::filesystem::temp_directory_path() / "pagelab-atomic-test";
  std::filesystem::remove_all(dir);
  pc::prepare_findings_directory(dir / "sub");
  const auto path = dir / "sub" / "finding.pgl";
  pc::write_file_atomically(path, "mode 4level\n");
  pc::write_file_atomically(path, "mode pae\n");  // replaces
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "mode pae\n");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "sub"),
                          std::filesystem::directory_iterator()),
            1);
  EXPECT_THROW(pc::prepare_findings_directory(path), std::invalid_argument);  // a file
  EXPECT_THROW(pc::write_file_atomically(dir / "missing" / "x", "y"), std::runtime_error);
  std::filesystem::remove_all(dir);
}

TEST(Progress, IsSilentWhenDisabledAndFormatsRates) {
  pc::Progress p(stderr, false);
  EXPECT_FALSE(p.due());
  EXPECT_EQ(pc::format_rate(1234567), "1.23M/s");
  EXPECT_EQ(pc::format_rate(45600), "45.6k/s");
  EXPECT_EQ(pc::format_rate(12), "12/s");
  EXPECT_EQ(pc::format_elapsed(65s), "1m05s");
}

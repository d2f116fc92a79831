#pragma once
// Seed-deterministic generation of fuzz cases: the same seed, case number and CPU
// features give the same case on any machine and standard library (a PRNG of our own,
// no std::*_distribution).
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "pagelab/fuzz/fuzz_case.hpp"
#include "pagelab/paging/cpu_state.hpp"

namespace pagelab::fuzz {

// What the cases focus on.
enum class Profile {
  All,       // a mix of everything below
  Tlb,       // history: entry changes with and without INVLPG / MOV CR3, host writes, G
  Rights,    // W/U/XD/PK over the levels against WP, SMEP, SMAP, AC, PKRU, NXE
  Reserved,  // reserved bits of every level (above MAXPHYADDR, bit 51, huge-page frames, PS)
  Modes,     // page sizes of every mode (4K/4M/PSE-36, 2M, 1G), aliases and self-maps
};
std::optional<Profile> profile_named(const std::string& name);
std::string to_string(Profile profile);
std::vector<std::string> profile_names();

// xoshiro256** seeded through splitmix64: fixed output everywhere.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t next();
  std::uint64_t below(std::uint64_t n);  // 0..n-1 (n > 0)
  bool chance(unsigned percent);         // percent in 0..100
  template <typename Range>
  const auto& pick(const Range& v) {
    return v[below(std::size(v))];
  }

 private:
  std::uint64_t s_[4];
};

struct GeneratorConfig {
  Profile profile = Profile::All;
  std::vector<paging::PagingMode> modes;  // the modes cases are drawn from (not empty)
  paging::CpuFeatures features;           // what the CPU offers (CPUID)
};

// The mode of case `number` (cases come in blocks of one mode: fewer mode switches).
paging::PagingMode mode_of_case(const GeneratorConfig& config, std::uint64_t seed,
                                std::uint64_t number);
FuzzCase generate_case(const GeneratorConfig& config, std::uint64_t seed, std::uint64_t number);

}  // namespace pagelab::fuzz

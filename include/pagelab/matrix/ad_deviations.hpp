#pragma once
// Known ways a platform departs from the architecture in the A/D bits the matrix reads
// back after each case, as data (the access outcomes' deviations are the lab's:
// lab/judge/access_deviations.hpp). Counted by name, not failed (unless --strict).
#include <cstdint>
#include <string>
#include <vector>

#include "pagelab/matrix/flag_space.hpp"

namespace pagelab::matrix {

// One entry read back with bits the judge does not allow.
struct ReadBack {
  const std::string& platform;  // "tcg" or "kvm": the first of lab::platform_keys()
  const MatrixMode& mode;
  bool leaf;  // the leaf entry of the case
  bool access_faulted;
  std::uint64_t got, want;  // read back, allowed (the judge's)
};

struct AdDeviation {
  std::string id;
  std::string rule;         // the rule broken (SDM section)
  std::string description;  // what the platform does, where it was seen
  std::string reproducer;   // a command that shows it
  bool (*matches)(const ReadBack&);
};

const std::vector<AdDeviation>& known_ad_deviations();
const AdDeviation* find_ad_deviation(const ReadBack& r);

}  // namespace pagelab::matrix

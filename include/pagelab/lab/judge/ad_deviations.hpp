#pragma once
// Known ways a platform departs from the architecture in the A/D bits a front-end reads
// back after an access, as data (access outcomes: access_deviations.hpp). The engine
// names its own A/D read-back with them, and so does the matrix; counted by name, not
// failed (unless --strict).
#include <cstdint>
#include <string>
#include <vector>

#include "pagelab/paging/mode.hpp"

namespace pagelab::lab {

// One paging-structure entry read back with bits the judge does not allow.
struct AdReadBack {
  const std::vector<std::string>& platform;  // platform_keys()
  bool leaf = false;                         // it maps the page (the walk's last entry)
  paging::PageSize leaf_size = paging::PageSize::Size4K;  // the page it maps, when a leaf
  bool access_faulted = false;                            // the last access that used it faulted
  std::uint64_t got = 0, want = 0;                        // read back, allowed (the judge's)
};

struct AdDeviation {
  std::string id;
  std::string rule;         // the rule broken (SDM section)
  std::string description;  // what the platform does, where it was seen
  std::string reproducer;   // a command that shows it
  bool (*matches)(const AdReadBack&);
};

const std::vector<AdDeviation>& known_ad_deviations();
const AdDeviation* find_ad_deviation(const AdReadBack& r);

}  // namespace pagelab::lab

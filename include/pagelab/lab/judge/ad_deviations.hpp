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
  // The bits it may set in the entry an access used as its leaf (0: none), so that a
  // read of that entry as data later in the batch may see them either way.
  std::uint64_t (*may_set)(const std::vector<std::string>& platform, paging::PageSize leaf_size,
                           bool access_faulted);
};

const std::vector<AdDeviation>& known_ad_deviations();
const AdDeviation* find_ad_deviation(const AdReadBack& r);
// What every known A/D deviation of `platform` may set in a leaf (AdDeviation::may_set).
std::uint64_t ad_bits_deviations_may_set(const std::vector<std::string>& platform,
                                         paging::PageSize leaf_size, bool access_faulted);

}  // namespace pagelab::lab

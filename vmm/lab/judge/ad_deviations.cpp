#include "pagelab/lab/judge/ad_deviations.hpp"

#include <algorithm>

#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::lab {

namespace {

bool on(const std::vector<std::string>& platform, std::string_view key) {
  return std::find(platform.begin(), platform.end(), key) != platform.end();
}

}  // namespace

const std::vector<AdDeviation>& known_ad_deviations() {
  static const std::vector<AdDeviation> list = {
      {"tcg-1g-leaf-accessed-on-fault",
       "SDM Vol. 3A §4.8: the accessed flag of the entry that maps the page is set when the "
       "translation is used; an access refused by the rights of that entry sets no A there",
       "QEMU 7.2 TCG sets A in a 1 GiB leaf (a PDPTE with PS) while walking, before it checks "
       "the rights and the leaf's reserved frame bits 29:13, so an access that then faults (U/S, "
       "SMAP, W, PK, RSVD) leaves A set; 2 MiB and 4 KiB leaves are checked first",
       "pagelab matrix --backend qemu --case '4level-1g pml4:p,us pdpt:p,us smap read cpl0'",
       [](const AdReadBack& r) {
         return on(r.platform, "tcg") && r.leaf_size == paging::PageSize::Size1G && r.leaf &&
                r.access_faulted && (r.got ^ r.want) == paging::Pte::Accessed &&
                (r.got & paging::Pte::Accessed) != 0;
       },
       [](const std::vector<std::string>& platform, paging::PageSize size, bool faulted) {
         return on(platform, "tcg") && size == paging::PageSize::Size1G && faulted
                    ? paging::Pte::Accessed
                    : std::uint64_t{0};
       }},
  };
  return list;
}

const AdDeviation* find_ad_deviation(const AdReadBack& r) {
  for (const auto& d : known_ad_deviations())
    if (d.matches(r)) return &d;
  return nullptr;
}

std::uint64_t ad_bits_deviations_may_set(const std::vector<std::string>& platform,
                                         paging::PageSize leaf_size, bool access_faulted) {
  std::uint64_t bits = 0;
  for (const auto& d : known_ad_deviations())
    bits |= d.may_set(platform, leaf_size, access_faulted);
  return bits;
}

}  // namespace pagelab::lab

#include "pagelab/lab/access_deviations.hpp"

#include "pagelab/kvm/flavour.hpp"

namespace pagelab::lab {

std::string platform_tag(const Lab& lab) {
  if (lab.backend_name() != "kvm") return "tcg";
  const auto flavour = kvm::detect_flavour().name;
  if (flavour == "kvm_pvm") return "pvm";
  if (flavour == "kvm_intel" || flavour == "kvm_amd") return flavour;
  return "kvm";
}

const std::vector<AccessDeviation>& known_access_deviations() {
  static const std::vector<AccessDeviation> list = {
      {"pvm-host-pte-write-invisible",
       "SDM Vol. 3A §4.10.4.1: after INVLPG (or MOV CR3) the next access walks the paging "
       "structures in memory, whoever wrote them",
       "PVM (shadow paging) keeps using the shadow of an entry the host rewrote in guest "
       "memory; only a guest write to the entry, a CR0.WP toggle or re-adding the memory slot "
       "makes the change visible",
       "pagelab run examples/foreign_writer.pgl --backend kvm",
       [](const AccessCase& c) { return c.platform == "pvm" && c.matches_before_foreign_writes; }},
  };
  return list;
}

const AccessDeviation* find_access_deviation(const AccessCase& c,
                                             const std::vector<AccessDeviation>& list) {
  for (const auto& d : list) {
    if (d.matches(c)) return &d;
  }
  return nullptr;
}

}  // namespace pagelab::lab

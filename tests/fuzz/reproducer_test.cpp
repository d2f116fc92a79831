// A reproducer states the vendor's rules it needs (`cpu amd|intel`) when the case sets
// bit 8 of a PML4E, which AMD reserves and Intel ignores, so that another machine skips
// it with the reason and the oracle alone replays it under the rules it was found with.
#include <gtest/gtest.h>

#include <string>

#include "pagelab/fuzz/runner.hpp"
#include "pagelab/fuzz/shrink.hpp"
#include "pagelab/lab/scenario/scenario.hpp"

namespace pagelab::fuzz {
namespace {

FuzzCase top_entry_case(std::uint64_t pml4e) {
  const auto& w = window_for(paging::PagingMode::Level4);
  FuzzCase c;
  c.mode = paging::PagingMode::Level4;
  c.entries.push_back({4, w.canonical()[4], pml4e});
  StepAccess a;
  a.va = w.entry_va(1, 0);
  c.steps.emplace_back(a);
  return c;
}

std::string rules_of(const FuzzCase& c, bool amd) {
  const ReproducerInfo info{"sig", "kvm", "all", "1/1", amd};
  const auto text = reproducer_text(c, CaseOutcome{}, info);
  return lab::scenario::parse_scenario(text, "r.pgl").rules;
}

TEST(Reproducer, Bit8OfAPml4eNamesTheVendorItWasFoundOn) {
  const auto& w = window_for(paging::PagingMode::Level4);
  const auto pointer = w.pointer_to(4) | paging::Pte::Present | paging::Pte::Writable;
  EXPECT_EQ(rules_of(top_entry_case(pointer | paging::Pte::Global), true), "amd");
  EXPECT_EQ(rules_of(top_entry_case(pointer | paging::Pte::Global), false), "intel");
  EXPECT_EQ(rules_of(top_entry_case(pointer), true), "");
}

}  // namespace
}  // namespace pagelab::fuzz

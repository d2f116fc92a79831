// The experiment's own mappings (the probe, its stack and mailbox, the batch area and its
// user alias, the identity map of the table pool) need nothing set by the CPU: every
// entry their walks use already has A, and every leaf D. Otherwise the CPU sets them at
// the probe's first CPL3 access or entry write, after the judge's model copied RAM, and
// a read through an alias of the tables finds what the model does not hold (the fuzzer's
// seed 7 case 11933688: tests/fuzz/findings/
// a_read_through_an_alias_of_the_tables_finds_the_probes_own_accessed_bits.pgl).
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/physical_memory.hpp"
#include "pagelab/paging/walker.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {
namespace {

using paging::AccessType;
using paging::PagingMode;
using paging::Privilege;

class ExperimentSpaceModes : public ::testing::TestWithParam<PagingMode> {};

TEST_P(ExperimentSpaceModes, TheProbesOwnWalksFindEveryAccessedAndDirtyBitSet) {
  const auto mode = GetParam();
  paging::CpuFeatures features;
  features.la57 = mode == PagingMode::Level5;
  paging::BufferMemory memory(ExperimentLayout::FramePoolLimit);
  ExperimentSpace space(memory, mode, features);
  auto state = paging::make_cpu_state(mode, space.root(), features);
  if (mode == PagingMode::Pae) {
    ASSERT_FALSE(paging::load_pdptes(memory, state));
  }
  const bool wide = mode == PagingMode::Level4 || mode == PagingMode::Level5;
  const std::uint64_t alias = wide ? PROBE_USER_ALIAS : PROBE_USER_ALIAS32;
  struct Use {
    std::uint64_t address;
    Privilege privilege;
  };
  const Use uses[] = {
      {PROBE_MAILBOX_GPA, Privilege::Supervisor},
      {PROBE_STACK_TOP - 8, Privilege::Supervisor},
      {PROBE_LOAD_GPA, Privilege::Supervisor},
      {PROBE_BATCH_GPA, Privilege::Supervisor},
      {PROBE_BATCH_LIMIT - 8, Privilege::Supervisor},
      {alias + PROBE_LOAD_GPA, Privilege::User},
      {alias + PROBE_BATCH_GPA, Privilege::User},
      {alias + PROBE_BATCH_LIMIT - 8, Privilege::User},
      {ExperimentLayout::TablePoolBase, Privilege::Supervisor},
      {ExperimentLayout::TablePoolLimit - 8, Privilege::Supervisor},
  };
  for (const auto& use : uses) {
    SCOPED_TRACE(::testing::Message() << std::hex << "0x" << use.address);
    const auto w = paging::walk(memory, state,
                                {paging::Linear(use.address), AccessType::Write, use.privilege});
    const auto* t = std::get_if<paging::Translation>(&w.outcome);
    ASSERT_NE(t, nullptr) << w.fault_reason;
    ASSERT_FALSE(t->ad_updates.empty());
    for (const auto& [entry, bits] : t->ad_updates) {
      // A and D sit in the low byte of every entry format.
      const std::uint64_t value = memory.read32(entry);
      EXPECT_EQ(value & bits, bits) << "entry at 0x" << std::hex << entry.value() << " = 0x"
                                    << value << " lacks 0x" << (bits & ~value);
    }
  }
  // PAE's PDPTEs stay as SDM table 4-8 wants them: bit 5 (A) is reserved there.
  if (mode == PagingMode::Pae) {
    for (const auto pdpte : state.pdptes) EXPECT_EQ(pdpte & paging::Pte::Accessed, 0u);
  }
}

std::string mode_name(const ::testing::TestParamInfo<PagingMode>& info) {
  switch (info.param) {
    case PagingMode::Bits32:
      return "Bits32";
    case PagingMode::Pae:
      return "Pae";
    case PagingMode::Level4:
      return "Level4";
    default:
      return "Level5";
  }
}

INSTANTIATE_TEST_SUITE_P(EveryMode, ExperimentSpaceModes,
                         ::testing::Values(PagingMode::Bits32, PagingMode::Pae, PagingMode::Level4,
                                           PagingMode::Level5),
                         mode_name);

}  // namespace
}  // namespace pagelab::lab

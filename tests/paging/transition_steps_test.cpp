// all_single_steps(): the enumeration the `modes` matrix iterates. Checked for
// determinism, for containing the writes the DESIGN.md routes need, and — against the
// architecture — that no allowed single write ever leads to a state the CPU cannot be in.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "pagelab/paging/transition.hpp"

namespace pagelab::paging {
namespace {

TransitionFeatures rich() {
  TransitionFeatures f;
  f.pcid = f.smep = f.smap = f.pku = f.la57 = f.umip = true;
  return f;
}

std::vector<ControlState> one_state_per_mode() {
  ControlState real;
  real.cs_d = false;
  ControlState prot;
  prot.cr0 = Cr0::Pe | Cr0::Et;
  prot.cr3 = 0x1000;
  ControlState p32 = prot;
  p32.cr0 |= Cr0::Pg;
  ControlState pae = p32;
  pae.cr4 = Cr4::Pae;
  ControlState compat = pae;
  compat.efer = Efer::Lme | Efer::Lma;
  ControlState l64 = compat;
  l64.cs_l = true;
  l64.cs_d = false;
  ControlState l57 = l64;
  l57.cr4 |= Cr4::La57 | Cr4::Pcide;
  ControlState c57 = compat;
  c57.cr4 |= Cr4::La57;
  return {real, prot, p32, pae, compat, l64, l57, c57};
}

const Step* find(const std::vector<Step>& steps, const std::string& label) {
  auto it =
      std::find_if(steps.begin(), steps.end(), [&](const Step& s) { return s.label == label; });
  return it == steps.end() ? nullptr : &*it;
}

TEST(AllSingleSteps, SameInputSameOutput) {
  for (const auto& s : one_state_per_mode()) {
    const auto a = all_single_steps(s, rich());
    const auto b = all_single_steps(s, rich());
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].what, b[i].what);
      EXPECT_EQ(a[i].value, b[i].value);
      EXPECT_EQ(a[i].label, b[i].label);
    }
  }
}

TEST(AllSingleSteps, LabelsAreUnique) {
  for (const auto& s : one_state_per_mode()) {
    std::set<std::string> labels;
    for (const auto& step : all_single_steps(s, rich())) {
      EXPECT_TRUE(labels.insert(step.label).second) << step.label;
    }
  }
}

TEST(AllSingleSteps, ContainsTheWritesTheRoutesNeed) {
  const ControlState prot = one_state_per_mode()[1];
  const auto steps = all_single_steps(prot, rich());
  const Step* pg = find(steps, "CR0.PG 0->1");
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(pg->what, Write::Cr0);
  EXPECT_EQ(pg->value, prot.cr0 | Cr0::Pg);
  const Step* pae = find(steps, "CR4.PAE 0->1");
  ASSERT_NE(pae, nullptr);
  EXPECT_EQ(pae->value, Cr4::Pae);
  const Step* lme = find(steps, "EFER.LME 0->1");
  ASSERT_NE(lme, nullptr);
  EXPECT_EQ(lme->what, Write::Efer);
  EXPECT_EQ(lme->value, Efer::Lme);
  for (const char* j :
       {"far jump L=0 D=0", "far jump L=0 D=1", "far jump L=1 D=0", "far jump L=1 D=1"}) {
    EXPECT_NE(find(steps, j), nullptr) << j;
  }
  EXPECT_NE(find(steps, "CR4 bit 15 (reserved)"), nullptr);
  EXPECT_NE(find(steps, "EFER bit 1 (reserved)"), nullptr);
}

TEST(AllSingleSteps, SixtyFourBitOperandProbesOnlyIn64BitMode) {
  const auto states = one_state_per_mode();
  EXPECT_EQ(find(all_single_steps(states[1], rich()), "CR0 bit 32 (reserved)"), nullptr);
  const auto steps = all_single_steps(states[5], rich());
  const Step* probe = find(steps, "CR0 bit 32 (reserved)");
  ASSERT_NE(probe, nullptr);
  // SDM 2.5: CR0 bits 63:32 are reserved → #GP(0).
  const Verdict v = evaluate(states[5], probe->what, probe->value, rich());
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.vector, std::optional<unsigned>{13});
}

TEST(AllSingleSteps, ReservedProbesAreRefused) {
  for (const auto& s : one_state_per_mode()) {
    for (const auto& step : all_single_steps(s, rich())) {
      if (step.label.find("(reserved)") == std::string::npos) continue;
      const Verdict v = evaluate(s, step.what, step.value, rich());
      EXPECT_FALSE(v.allowed) << mode_name(mode_of(s)) << ": " << step.label;
    }
  }
}

TEST(AllSingleSteps, AllowedWritesLeadToStatesACpuCanBeIn) {
  // SDM 9.8.5 / figure 4-1: LMA = LME AND PG, PG needs PE, IA-32e needs PAE. A model
  // that allows a write into any other state is wrong.
  for (const auto& f : {TransitionFeatures{}, rich()}) {
    for (const auto& s : one_state_per_mode()) {
      for (const auto& step : all_single_steps(s, f)) {
        const Verdict v = evaluate(s, step.what, step.value, f);
        if (!v.allowed) continue;
        EXPECT_NE(v.mode_after, Mode::Inconsistent)
            << mode_name(mode_of(s)) << ": " << step.label << " -> " << inconsistency(v.after);
      }
    }
  }
}

}  // namespace
}  // namespace pagelab::paging

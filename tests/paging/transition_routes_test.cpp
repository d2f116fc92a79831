// The routes between paging modes from DESIGN.md "Mode transitions" and SDM vol. 3
// figure 4-1 / §9.8.5, walked one control write at a time. Every step checks whether it
// is allowed and the mode it leads to.
#include <gtest/gtest.h>

#include "pagelab/paging/transition.hpp"

namespace pagelab::paging {
namespace {

class Route {
 public:
  explicit Route(ControlState start, TransitionFeatures f = {}) : state_(start), f_(f) {}

  // Applies a write that must be allowed and lead to `mode`.
  Route& ok(Write what, std::uint64_t value, Mode mode) {
    const Verdict v = evaluate(state_, what, value, f_);
    EXPECT_TRUE(v.allowed) << to_string(what) << " " << std::hex << value << ": " << v.rule;
    EXPECT_EQ(v.mode_after, mode) << to_string(what) << ": got " << mode_name(v.mode_after);
    state_ = v.after;
    return *this;
  }
  // A write that must be refused with #GP(0), leaving the state alone.
  Route& gp(Write what, std::uint64_t value) {
    const Verdict v = evaluate(state_, what, value, f_);
    EXPECT_FALSE(v.allowed) << to_string(what) << " " << std::hex << value << ": " << v.rule;
    EXPECT_EQ(v.vector, std::optional<unsigned>{13});
    EXPECT_EQ(v.after, state_);
    return *this;
  }

  Route& set_cr0(std::uint64_t b, Mode m) { return ok(Write::Cr0, state_.cr0 | b, m); }
  Route& clear_cr0(std::uint64_t b, Mode m) { return ok(Write::Cr0, state_.cr0 & ~b, m); }
  Route& set_cr4(std::uint64_t b, Mode m) { return ok(Write::Cr4, state_.cr4 | b, m); }
  Route& clear_cr4(std::uint64_t b, Mode m) { return ok(Write::Cr4, state_.cr4 & ~b, m); }
  Route& set_efer(std::uint64_t b, Mode m) { return ok(Write::Efer, state_.efer | b, m); }
  Route& clear_efer(std::uint64_t b, Mode m) { return ok(Write::Efer, state_.efer & ~b, m); }
  Route& jump(bool l, bool d, Mode m) {
    return ok(Write::FarJumpCs, FarJumpOperand::make(l, d, 0x08), m);
  }

  const ControlState& state() const { return state_; }

 private:
  ControlState state_;
  TransitionFeatures f_;
};

// PG=0 PAE=0 LME=0 in protected mode (the start of every route in DESIGN.md).
ControlState start() {
  ControlState s;
  s.cr0 = Cr0::Pe | Cr0::Et;
  s.cr3 = 0x1000;
  return s;
}

TEST(TransitionRoutes, RealToProtectedWithPe) {
  // DESIGN.md: PE=1 enters protected mode, PE=0 returns to real mode.
  Route r(ControlState{});
  r.set_cr0(Cr0::Pe, Mode::Protected).clear_cr0(Cr0::Pe, Mode::Real);
}

TEST(TransitionRoutes, A_PgGivesThirtyTwoBitPagingThenPaeGivesPae) {
  // DESIGN.md route (a): set PG → 32-bit paging, LME can then not be set; set PAE → PAE
  // paging, LME still can not be set (SDM 4.1.2: LME cannot change while PG=1).
  Route r(start());
  r.set_cr0(Cr0::Pg, Mode::Paging32)
      .gp(Write::Efer, r.state().efer | Efer::Lme)
      .set_cr4(Cr4::Pae, Mode::Pae)
      .gp(Write::Efer, r.state().efer | Efer::Lme);
}

TEST(TransitionRoutes, B_PaeThenPgGivesPaePaging) {
  Route r(start());
  r.set_cr4(Cr4::Pae, Mode::Protected).set_cr0(Cr0::Pg, Mode::Pae);
}

TEST(TransitionRoutes, C_PaeThenLmeThenPgGivesFourLevel) {
  Route r(start());
  r.set_cr4(Cr4::Pae, Mode::Protected)
      .set_efer(Efer::Lme, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Compatibility4)
      .jump(true, false, Mode::Long64_4Level);
  EXPECT_TRUE(r.state().efer & Efer::Lma);
}

TEST(TransitionRoutes, C_LmeThenPaeThenPgGivesFourLevelToo) {
  // DESIGN.md: "set PAE and LME (either order) with PG=0, then PG → 4-level paging".
  Route r(start());
  r.set_efer(Efer::Lme, Mode::Protected)
      .set_cr4(Cr4::Pae, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Compatibility4);
}

TEST(TransitionRoutes, D_LmeThenPgIsRefusedUntilPaeIsSet) {
  // DESIGN.md route (d): setting PG with LME=1 and PAE=0 is illegal (#GP).
  Route r(start());
  r.set_efer(Efer::Lme, Mode::Protected)
      .gp(Write::Cr0, r.state().cr0 | Cr0::Pg)
      .set_cr4(Cr4::Pae, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Compatibility4);
}

TEST(TransitionRoutes, DownFrom64BitThroughCompatibilityToReal) {
  // DESIGN.md: leaving long mode goes through compatibility mode (CS.L=0) and PG=0
  // (SDM 9.8.5.4); then LME=0 and PE=0 reach real mode.
  Route r(start());
  r.set_cr4(Cr4::Pae, Mode::Protected)
      .set_efer(Efer::Lme, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Compatibility4)
      .jump(true, false, Mode::Long64_4Level)
      .gp(Write::Cr0, r.state().cr0 & ~Cr0::Pg)  // not from 64-bit mode
      .jump(false, true, Mode::Compatibility4)
      .clear_cr0(Cr0::Pg, Mode::Protected)
      .clear_efer(Efer::Lme, Mode::Protected)
      .clear_cr4(Cr4::Pae, Mode::Protected)
      .clear_cr0(Cr0::Pe, Mode::Real);
  EXPECT_FALSE(r.state().efer & (Efer::Lme | Efer::Lma));
}

TEST(TransitionRoutes, FiveLevelIsEnteredByLeavingLongModeAndSettingLa57) {
  // DESIGN.md: LA57 can only change while not in IA-32e mode.
  TransitionFeatures f;
  f.la57 = true;
  Route r(start(), f);
  r.set_cr4(Cr4::Pae, Mode::Protected)
      .set_efer(Efer::Lme, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Compatibility4)
      .jump(true, false, Mode::Long64_4Level)
      .gp(Write::Cr4, r.state().cr4 | Cr4::La57)
      .jump(false, true, Mode::Compatibility4)
      .gp(Write::Cr4, r.state().cr4 | Cr4::La57)
      .clear_cr0(Cr0::Pg, Mode::Protected)
      .set_cr4(Cr4::La57, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Compatibility5)
      .jump(true, false, Mode::Long64_5Level)
      .gp(Write::Cr4, r.state().cr4 & ~Cr4::La57);
}

TEST(TransitionRoutes, La57WithoutTheFeatureIsRefusedEvenOutsideLongMode) {
  Route r(start());
  r.set_cr4(Cr4::Pae, Mode::Protected).gp(Write::Cr4, r.state().cr4 | Cr4::La57);
}

TEST(TransitionRoutes, PaePagingBackToThirtyTwoBitAndOff) {
  // Figure 4-1: PAE paging --clear PAE--> 32-bit paging --clear PG--> no paging.
  Route r(start());
  r.set_cr4(Cr4::Pae, Mode::Protected)
      .set_cr0(Cr0::Pg, Mode::Pae)
      .clear_cr4(Cr4::Pae, Mode::Paging32)
      .clear_cr0(Cr0::Pg, Mode::Protected);
}

}  // namespace
}  // namespace pagelab::paging

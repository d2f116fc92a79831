#pragma once
// Engine tests: a Lab (skipped with the reason where /dev/kvm is unusable) plus an
// experiment engine in 4-level paging with a few data pages the tests poke at.
#include <gtest/gtest.h>

#include <memory>

#include "lab/lab_fixture.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::test {

class EngineTest : public LabTest {
 protected:
  static constexpr std::uint64_t kPage = 4096;
  // Experiment pages, away from the probe's own ranges.
  static constexpr paging::Linear kUserRw{0x10000000};   // U=1, R/W=1
  static constexpr paging::Linear kUserRo{0x10001000};   // U=1, R/W=0
  static constexpr paging::Linear kSuperRw{0x10002000};  // U=0, R/W=1
  static constexpr paging::Linear kSuperRo{0x10003000};  // U=0, R/W=0
  static constexpr paging::Linear kUserNx{0x10004000};   // U=1, R/W=1, XD=1
  static constexpr paging::Linear kAbsent{0x10005000};   // not present (same PT)

  void SetUp() override {
    LabTest::SetUp();
    if (IsSkipped()) return;
  }

  // Builds the engine with `options`, maps the pages above and starts it.
  lab::Engine& start(const lab::EngineOptions& options = {}) {
    using paging::Pte;
    engine_ = std::make_unique<lab::Engine>(lab(), options);
    auto& s = engine_->space();
    frame_user_rw_ =
        s.map(kUserRw, std::nullopt, kPage, paging::PageSize::Size4K, Pte::User | Pte::Writable);
    s.map(kUserRo, std::nullopt, kPage, paging::PageSize::Size4K, Pte::User);
    s.map(kSuperRw, std::nullopt, kPage, paging::PageSize::Size4K, Pte::Writable);
    s.map(kSuperRo, std::nullopt, kPage, paging::PageSize::Size4K, 0);
    s.map(kUserNx, std::nullopt, kPage, paging::PageSize::Size4K,
          Pte::User | Pte::Writable | Pte::NoExecute);
    engine_->start();
    return *engine_;
  }
  lab::Engine& engine() { return *engine_; }

 public:
  // One probe access, for the op lists the tests build.
  static lab::OpAccess access(paging::Linear va, paging::AccessType type, paging::Privilege priv,
                              unsigned size = 8, std::uint64_t value = 0) {
    lab::OpAccess a;
    a.address = va;
    a.type = type;
    a.privilege = priv;
    a.size = size;
    a.write_value = value;
    return a;
  }

 protected:
  // Runs one op and returns its checked result; fails the test if it disagrees.
  lab::CheckedResult one(const lab::Op& op) {
    const std::vector<lab::Op> ops{op};
    auto r = engine().run(ops);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_TRUE(r[0].agrees) << r[0].report;
    return r[0];
  }

  paging::GuestPhys frame_user_rw_;

 private:
  std::unique_ptr<lab::Engine> engine_;
};

}  // namespace pagelab::test

#pragma once
// Lab tests need /dev/kvm: they run wherever it works and skip, saying why, where
// it does not.
#include <gtest/gtest.h>

#include <memory>

#include "pagelab/kvm/system.hpp"
#include "pagelab/lab/machine/lab.hpp"

namespace pagelab::test {

class LabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = kvm::System::unavailable_reason()) {
      GTEST_SKIP() << "needs /dev/kvm: " << *why;
    }
    lab::LabOptions options;
    options.watchdog = std::chrono::milliseconds(2000);
    lab_ = std::make_unique<lab::Lab>(options);
  }
  lab::Lab& lab() { return *lab_; }

 private:
  std::unique_ptr<lab::Lab> lab_;
};

}  // namespace pagelab::test

#pragma once
// Engine tests on QEMU TCG, so that they run anywhere: a Lab on QEMU and an engine in
// 4-level paging. The test's SetUp maps its pages, then calls engine_->start().
#include <memory>

#include "needs_backend.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/lab.hpp"

namespace pagelab::test {

class QemuEngineTest : public QemuTest {
 protected:
  void SetUp() override {
    QemuTest::SetUp();
    if (IsSkipped()) return;
    lab::LabOptions o;
    o.backend = lab::BackendKind::Qemu;
    lab_ = std::make_unique<lab::Lab>(o);
    engine_ = std::make_unique<lab::Engine>(*lab_, lab::EngineOptions{});
  }
  std::unique_ptr<lab::Lab> lab_;
  std::unique_ptr<lab::Engine> engine_;
};

}  // namespace pagelab::test

// The QEMU TCG backend: boot, the full tour, a triple fault, a hang, and cleanup.
// Skips, naming the binary, where qemu-system-x86_64 is not installed.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "needs_backend.hpp"
#include "pagelab/lab/lab.hpp"
#include "pagelab/lab/qemu_backend.hpp"
#include "pagelab/lab/tour.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::test {
namespace {

bool process_with_name_exists(const std::string& name) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find("guest=" + name) != std::string::npos) return true;
  }
  return false;
}

class QemuLabTest : public QemuTest {
 protected:
  void SetUp() override {
    QemuTest::SetUp();
    if (IsSkipped()) return;
    name_ = "pagelab-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::unique_ptr<lab::Lab> make_lab(std::chrono::milliseconds watchdog = std::chrono::seconds(5)) {
    lab::QemuOptions q;
    q.name = name_;
    lab::LabOptions o;
    o.watchdog = watchdog;
    return std::make_unique<lab::Lab>(std::make_unique<lab::QemuBackend>(q), o);
  }
  std::string name_;
};

TEST_F(QemuLabTest, BootsTheProbeInRealModeAndLearnsCpuidFromIt) {
  auto lab = make_lab();
  EXPECT_EQ(lab->backend_name(), "qemu-tcg");
  EXPECT_EQ(lab->last_report().code_bits, 16U);
  // -cpu max under TCG reports LA57 and 1 GiB pages (PLATFORM.md).
  EXPECT_TRUE(lab->cpu().paging_features().la57);
  EXPECT_TRUE(lab->cpu().paging_features().page1g);
  EXPECT_THROW((void)lab->vcpu(), std::logic_error);
}

TEST_F(QemuLabTest, TourEntersEveryModeAndReturnsToRealMode) {
  auto lab = make_lab();
  const auto tour = lab::run_tour(*lab);
  ASSERT_EQ(tour.stops.size(), 7U);
  for (const auto& stop : tour.stops) {
    EXPECT_EQ(stop.outcome, lab::StopOutcome::Entered) << stop.mode << ": " << stop.reason;
  }
  EXPECT_TRUE(tour.ok());
  EXPECT_EQ(lab->last_report().code_bits, 16U);
}

TEST_F(QemuLabTest, TripleFaultIsAGuestStoppedWithRegisters) {
  auto lab = make_lab();
  lab->enter_protected();
  try {
    lab->command(PROBE_CMD_TRIPLE_FAULT);
    FAIL() << "no GuestStopped";
  } catch (const lab::GuestStopped& stop) {
    EXPECT_EQ(stop.kind(), "triple fault (SHUTDOWN)");
    EXPECT_NE(stop.report().find("SHUTDOWN"), std::string::npos);
    EXPECT_EQ(stop.json()["backend"], "qemu-tcg");
    // The probe was in 32-bit protected mode: CR0.PE must be in the registers.
    EXPECT_EQ(stop.json()["mode"], "32-bit protected");
  }
}

TEST_F(QemuLabTest, HangIsCaughtByTheWatchdog) {
  auto lab = make_lab(std::chrono::milliseconds(300));
  try {
    lab->command(PROBE_CMD_HANG);
    FAIL() << "no GuestStopped";
  } catch (const lab::GuestStopped& stop) {
    EXPECT_EQ(stop.kind(), "hang");
    EXPECT_EQ(stop.json()["mode"], "real");
  }
}

TEST_F(QemuLabTest, NoQemuProcessOutlivesTheLab) {
  {
    auto lab = make_lab();
    EXPECT_TRUE(process_with_name_exists(name_));
  }
  EXPECT_FALSE(process_with_name_exists(name_));
}

}  // namespace
}  // namespace pagelab::test

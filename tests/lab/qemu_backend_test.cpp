// The QEMU TCG backend: boot, the full tour, a triple fault, a hang, and cleanup.
// Skips, naming the binary, where qemu-system-x86_64 is not installed.
#include <gtest/gtest.h>
#include <sched.h>
#include <signal.h>

#include <filesystem>

#include <fmt/core.h>
#include <memory>
#include <optional>
#include <thread>

#include "needs_backend.hpp"
#include "pagelab/lab/backend/qemu_backend.hpp"
#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/tour/tour.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/probe_abi.h"
#include "process_table.hpp"

namespace pagelab::test {
namespace {

bool process_with_name_exists(const std::string& name) {
  const auto table = process_table();
  return std::any_of(table.begin(), table.end(), [&](const ProcessInfo& p) {
    return p.cmdline.find("guest=" + name) != std::string::npos;
  });
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
  // -cpu max under TCG reports LA57 and 1 GiB pages (docs/platforms.md).
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
    // What QEMU did meanwhile and where the probe's wait stood: a guest that spun, a
    // halted probe whose wake-up got lost, or a QEMU that got no CPU.
    EXPECT_NE(stop.report().find("ms of CPU in the last"), std::string::npos) << stop.report();
    EXPECT_NE(stop.report().find("probe's wait word 0, NMIs taken"), std::string::npos)
        << stop.report();
  }
}

TEST_F(QemuLabTest, ASpinningGuestIsAHangOnceQemuHasSpentTheBusyBudget) {
  // The wall-clock limit is far away: only the CPU-time budget can end this.
  auto lab = make_lab(std::chrono::seconds(120));
  lab->set_busy_watchdog(std::chrono::milliseconds(200));
  try {
    lab->command(PROBE_CMD_HANG);
    FAIL() << "no GuestStopped";
  } catch (const lab::GuestStopped& stop) {
    EXPECT_EQ(stop.kind(), "hang");
    EXPECT_NE(stop.report().find("ms of CPU time"), std::string::npos) << stop.report();
  }
}

TEST_F(QemuLabTest, AQemuThatGetsNoCpuIsNotAHang) {
  // A loaded machine, at its worst: QEMU does not run at all for longer than the busy
  // budget. The command must still complete once QEMU runs again.
  auto lab = make_lab(std::chrono::seconds(120));
  lab->set_busy_watchdog(std::chrono::milliseconds(100));
  const pid_t qemu = dynamic_cast<lab::QemuBackend&>(lab->backend()).pid();
  ASSERT_EQ(kill(qemu, SIGSTOP), 0);
  std::thread resume([qemu] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    kill(qemu, SIGCONT);
  });
  const auto start = std::chrono::steady_clock::now();
  std::optional<lab::ProbeReport> report;
  try {
    report = lab->command(PROBE_CMD_REPORT);
  } catch (const lab::GuestStopped& stop) {
    ADD_FAILURE() << "a stopped QEMU was reported as " << stop.report();
  }
  resume.join();
  // The command really waited out the stop, so the budget was tested.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->ok()) << report->outcome_text();
}

TEST_F(QemuLabTest, ResetAfterATripleFaultBootsTheProbeAgainInTheSameQemu) {
  auto lab = make_lab();
  const pid_t qemu = dynamic_cast<lab::QemuBackend&>(lab->backend()).pid();
  lab->enter_protected();
  EXPECT_THROW(lab->command(PROBE_CMD_TRIPLE_FAULT), lab::GuestStopped);
  lab->reset();
  EXPECT_EQ(dynamic_cast<lab::QemuBackend&>(lab->backend()).pid(), qemu);
  EXPECT_EQ(lab->last_report().code_bits, 16U);
  EXPECT_EQ(lab->last_report().cr0 & paging::Cr0::Pe, 0U);
  // Not just a report: the probe takes commands again, and the mode tables are back.
  lab->enter_protected();
  lab->enter_long(paging::PagingMode::Level4);
  EXPECT_EQ(lab->last_report().code_bits, 64U);
  // A triple fault after the reset is reported again, not turned into a reboot.
  try {
    lab->command(PROBE_CMD_TRIPLE_FAULT);
    FAIL() << "no GuestStopped";
  } catch (const lab::GuestStopped& stop) {
    EXPECT_EQ(stop.kind(), "triple fault (SHUTDOWN)");
  }
}

TEST_F(QemuLabTest, ResetAfterAHangAndFromARunningProbe) {
  auto lab = make_lab(std::chrono::milliseconds(300));
  EXPECT_THROW(lab->command(PROBE_CMD_HANG), lab::GuestStopped);
  lab->reset();
  EXPECT_EQ(lab->last_report().code_bits, 16U);
  lab->enter_protected();
  lab->reset();  // the probe was waiting for a command, i.e. running
  EXPECT_EQ(lab->last_report().code_bits, 16U);
  EXPECT_TRUE(lab->command(PROBE_CMD_REPORT).ok());
}

// While the host works between commands, the probe halts instead of spinning a host
// core under TCG (probe_abi.h, MB_WAITING), and the host's NMI wakes it for the next
// command, in 32-bit protected mode and in 64-bit mode alike.
TEST_F(QemuLabTest, AnIdleProbeHaltsAndTheNextCommandWakesIt) {
  auto lab = make_lab();
  auto& qemu = dynamic_cast<lab::QemuBackend&>(lab->backend());
  const paging::GuestPhys waiting(PROBE_MAILBOX_GPA + MB_WAITING);
  auto halted_soon = [&] {
    for (int i = 0; i < 500; ++i) {
      if (lab->ram().read<std::uint32_t>(waiting) == PROBE_WAIT_HALTED) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  };
  ASSERT_TRUE(lab->command(PROBE_CMD_ENTER_PROT).ok());
  ASSERT_TRUE(halted_soon()) << "the 32-bit probe never announced a halt";
  const auto before = qemu.wake_ups();
  auto r = lab->command(PROBE_CMD_REPORT);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.code_bits, 32U);
  EXPECT_GT(qemu.wake_ups(), before);
  EXPECT_NE(lab->ram().read<std::uint32_t>(waiting), PROBE_WAIT_WOKEN) << "the NMI was never taken";
  // Many commands in a row, each after an idle moment: none is lost.
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    r = lab->command(PROBE_CMD_CPUID, 0, 0);
    ASSERT_TRUE(r.ok()) << i;
  }
}

TEST_F(QemuLabTest, AnIdleProbeIn64BitModeHaltsAndIsWokenToo) {
  auto lab = make_lab();
  auto& qemu = dynamic_cast<lab::QemuBackend&>(lab->backend());
  lab::Engine engine(*lab);
  engine.start();  // 4-level paging, 64-bit mode
  const paging::GuestPhys waiting(PROBE_MAILBOX_GPA + MB_WAITING);
  bool halted = false;
  for (int i = 0; i < 500 && !halted; ++i) {
    halted = lab->ram().read<std::uint32_t>(waiting) == PROBE_WAIT_HALTED;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_TRUE(halted) << "the 64-bit probe never announced a halt";
  const auto before = qemu.wake_ups();
  const auto r = lab->command(PROBE_CMD_REPORT);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.code_bits, 64U);
  EXPECT_GT(qemu.wake_ups(), before);
}

// Every thread of a process, by its affinity mask.
std::vector<std::vector<unsigned>> thread_cpus(int pid) {
  std::vector<std::vector<unsigned>> out;
  for (const auto& task : std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid))) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(std::stoi(task.path().filename().string()), sizeof set, &set) != 0) {
      continue;  // a thread that ended meanwhile
    }
    std::vector<unsigned> cpus;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
    out.push_back(cpus);
  }
  return out;
}

std::vector<unsigned> my_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(::sched_getaffinity(0, sizeof set, &set), 0);
  std::vector<unsigned> cpus;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// A fuzz worker and its machine share one CPU: every QEMU thread goes there, the
// machine still runs with its driver on that CPU too (the host no longer spins while
// QEMU needs it), and QEMU goes back to the driver's CPUs when no longer kept.
TEST_F(QemuLabTest, SharingACpuKeepsEveryQemuThreadThereAndTheMachineStillRuns) {
  auto lab = make_lab();
  const auto pid = dynamic_cast<lab::QemuBackend&>(lab->backend()).pid();
  const auto mine = my_cpus();
  ASSERT_FALSE(mine.empty());
  const unsigned cpu = mine.back();
  lab->backend().share_cpu(cpu);
  const auto kept = thread_cpus(pid);
  ASSERT_FALSE(kept.empty());
  for (const auto& t : kept) EXPECT_EQ(t, std::vector<unsigned>{cpu});
  std::optional<lab::Tour> tour;
  std::thread driver([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    tour = lab::run_tour(*lab);
  });
  driver.join();
  ASSERT_TRUE(tour.has_value());
  EXPECT_TRUE(tour->ok()) << tour->to_json().dump();
  lab->backend().share_cpu(std::nullopt);
  for (const auto& t : thread_cpus(pid)) EXPECT_EQ(t, mine);
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

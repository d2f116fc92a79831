// The run() watchdog: a guest spinning in `jmp $` never exits on any KVM, so only
// the watchdog can end the run.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <thread>
#include <variant>

#include "test_vm.hpp"

namespace pagelab::kvm {
namespace {

using namespace std::chrono_literals;
using paging::GuestPhys;
using testing::kCodeGpa;
using testing::TestVm;

constexpr GuestPhys kHltGpa{0x1010};

void load_spin_and_hlt(TestVm& t) {
  t.load(kCodeGpa, {
                       0xeb, 0xfe,  // jmp $
                   });
  t.load(kHltGpa, {
                      0xf4,  // hlt
                  });
}

TEST(Watchdog, SpinningGuestBecomesHangAndTheVcpuStaysUsable) {
  PAGELAB_REQUIRE_KVM();
  TestVm t;
  load_spin_and_hlt(t);
  const Exit exit = t.vcpu.run(200ms);
  const auto* hang = std::get_if<HangExit>(&exit);
  ASSERT_NE(hang, nullptr) << describe(exit);
  EXPECT_EQ(hang->after, 200ms);
  EXPECT_EQ(describe(exit), "hang: no exit within 200 ms");
  // `jmp $` only ever jumps to itself.
  EXPECT_EQ(t.vcpu.regs().rip, kCodeGpa.value());
  EXPECT_EQ(t.vcpu.run_struct().immediate_exit, 0);

  t.set_ip(kHltGpa.value());
  const Exit after = t.vcpu.run();
  EXPECT_TRUE(std::holds_alternative<HltExit>(after)) << describe(after);
}

TEST(Watchdog, FiresAgainOnTheNextRun) {
  PAGELAB_REQUIRE_KVM();
  TestVm t;
  load_spin_and_hlt(t);
  EXPECT_TRUE(std::holds_alternative<HangExit>(t.vcpu.run(50ms)));
  EXPECT_TRUE(std::holds_alternative<HangExit>(t.vcpu.run(50ms)));
}

TEST(Watchdog, ZeroTimeoutStillEndsTheRun) {
  PAGELAB_REQUIRE_KVM();
  TestVm t;
  load_spin_and_hlt(t);
  // The signal most likely lands before KVM_RUN is entered: immediate_exit covers it.
  EXPECT_TRUE(std::holds_alternative<HangExit>(t.vcpu.run(0ms)));
}

TEST(Watchdog, QuickExitIsReportedAndTheTimerIsDisarmed) {
  PAGELAB_REQUIRE_KVM();
  TestVm t;
  t.load(kCodeGpa, {
                       0xe6, 0xe9,  // out 0xe9, al
                       0xf4,        // hlt
                   });
  const Exit first = t.vcpu.run(50ms);
  EXPECT_TRUE(std::holds_alternative<IoExit>(first)) << describe(first);
  EXPECT_EQ(t.vcpu.run_struct().immediate_exit, 0);
  // Past the deadline: a timer left armed would have fired by now.
  std::this_thread::sleep_for(150ms);
  const Exit second = t.vcpu.run();
  EXPECT_TRUE(std::holds_alternative<HltExit>(second)) << describe(second);
}

std::atomic<int> g_other_signals{0};
void count_signal(int) {
  g_other_signals.fetch_add(1);
}

TEST(Watchdog, OtherSignalsDoNotEndTheRun) {
  PAGELAB_REQUIRE_KVM();
  TestVm t;
  load_spin_and_hlt(t);
  struct sigaction action {};
  action.sa_handler = count_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: KVM_RUN really returns EINTR
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGUSR2, &action, &previous), 0);
  g_other_signals = 0;
  const pthread_t vcpu_thread = pthread_self();
  std::thread poker([vcpu_thread] {
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(30ms);
      pthread_kill(vcpu_thread, SIGUSR2);
    }
  });
  const Exit exit = t.vcpu.run(300ms);
  poker.join();
  sigaction(SIGUSR2, &previous, nullptr);
  EXPECT_TRUE(std::holds_alternative<HangExit>(exit)) << describe(exit);
  EXPECT_EQ(g_other_signals.load(), 3);
}

}  // namespace
}  // namespace pagelab::kvm

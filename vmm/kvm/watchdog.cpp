#include "watchdog.hpp"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "pagelab/kvm/error.hpp"
#include "pagelab/kvm/vcpu.hpp"

namespace pagelab::kvm {

int watchdog_signal() {
  // A realtime signal: nobody else in the process should expect it, and unlike
  // SIGUSR1 it cannot collide with a test harness or a library's default handler.
  return SIGRTMIN + 5;
}

namespace detail {
namespace {

// Read by the signal handler, so plain thread-locals with constant initialisation
// (no lazy-init wrapper): async-signal-safe to touch.
constinit thread_local kvm_run* volatile t_armed_run = nullptr;
constinit thread_local volatile sig_atomic_t t_expired = 0;

void on_watchdog_signal(int /*signo*/) {
  kvm_run* run = t_armed_run;
  if (run != nullptr) {
    run->immediate_exit = 1;
  }
  t_expired = 1;
}

void install_handler_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = on_watchdog_signal;
    sigemptyset(&action.sa_mask);
    // No SA_RESTART: KVM_RUN must come back with EINTR, not be restarted.
    action.sa_flags = 0;
    if (::sigaction(watchdog_signal(), &action, nullptr) != 0) {
      throw KvmError("sigaction (vCPU watchdog)", errno);
    }
  });
}

// One timer per thread, aimed at that thread, created on first use.
class ThreadTimer {
 public:
  ThreadTimer() {
    sigevent event{};
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = watchdog_signal();
    event._sigev_un._tid = ::gettid();
    if (::timer_create(CLOCK_MONOTONIC, &event, &id_) != 0) {
      throw KvmError("timer_create (vCPU watchdog)", errno);
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, watchdog_signal());
    // A thread that blocked the signal would never be kicked out of KVM_RUN.
    ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
  ThreadTimer(const ThreadTimer&) = delete;
  ThreadTimer& operator=(const ThreadTimer&) = delete;
  ~ThreadTimer() { ::timer_delete(id_); }

  void set(std::chrono::nanoseconds after) {
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(after.count() / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(after.count() % 1'000'000'000);
    if (::timer_settime(id_, 0, &spec, nullptr) != 0) {
      throw KvmError("timer_settime (vCPU watchdog)", errno);
    }
  }

 private:
  timer_t id_{};
};

ThreadTimer& thread_timer() {
  thread_local ThreadTimer timer;
  return timer;
}

}  // namespace

WatchdogArm::WatchdogArm(kvm_run* run, std::chrono::milliseconds after) {
  install_handler_once();
  ThreadTimer& timer = thread_timer();
  t_expired = 0;
  t_armed_run = run;
  // A zero it_value would disarm instead of firing at once.
  const auto delay =
      after.count() > 0 ? std::chrono::nanoseconds(after) : std::chrono::nanoseconds(1);
  try {
    timer.set(delay);
  } catch (...) {
    t_armed_run = nullptr;
    throw;
  }
}

WatchdogArm::~WatchdogArm() {
  // Disarm first: once timer_settime returns, a signal already generated has been
  // delivered (signals are handled on the way back from the syscall), and no new
  // one can be. Only then is it safe to forget the kvm_run.
  try {
    thread_timer().set(std::chrono::nanoseconds(0));
  } catch (...) {
    // Disarming an existing timer cannot fail with valid arguments.
  }
  t_armed_run = nullptr;
}

bool WatchdogArm::expired() const {
  return t_expired != 0;
}

}  // namespace detail
}  // namespace pagelab::kvm

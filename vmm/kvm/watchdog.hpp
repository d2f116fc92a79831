#pragma once
// Private to the kvm layer: the vCPU watchdog. A POSIX timer aimed at the calling
// thread raises a signal whose handler sets kvm_run.immediate_exit, so KVM_RUN
// returns EINTR now (if in the guest) or at once (if the signal landed just before
// KVM_RUN was entered).
#include <linux/kvm.h>

#include <chrono>

namespace pagelab::kvm::detail {

// Armed for its lifetime on the constructing thread; the destructor disarms the
// timer and forgets `run`, so no signal can touch it afterwards. One per thread at
// a time (it is only used inside Vcpu::run).
class WatchdogArm {
 public:
  WatchdogArm(kvm_run* run, std::chrono::milliseconds after);
  WatchdogArm(const WatchdogArm&) = delete;
  WatchdogArm& operator=(const WatchdogArm&) = delete;
  ~WatchdogArm();

  // True once the timer has fired (from the moment the handler ran).
  [[nodiscard]] bool expired() const;
};

}  // namespace pagelab::kvm::detail

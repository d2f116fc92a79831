#pragma once
// SIGINT (and SIGTERM) during a campaign: the first one asks the loop to stop after the
// current batch and print its summary; a second one kills the process as usual.
namespace pagelab::campaign {

class StopOnSignal {
 public:
  StopOnSignal();   // installs the handlers
  ~StopOnSignal();  // restores the previous ones
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  [[nodiscard]] static bool requested();
};

}  // namespace pagelab::campaign

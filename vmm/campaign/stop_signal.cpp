#include "pagelab/campaign/stop_signal.hpp"

#include <csignal>

namespace pagelab::campaign {

namespace {
volatile std::sig_atomic_t g_requested = 0;
struct sigaction g_old_int {
}, g_old_term{};

void on_signal(int sig) {
  if (g_requested != 0) {
    // A second signal: the user means it. Back to the default action, and deliver.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_requested = 1;
}
}  // namespace

StopOnSignal::StopOnSignal() {
  g_requested = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool StopOnSignal::requested() {
  return g_requested != 0;
}

}  // namespace pagelab::campaign

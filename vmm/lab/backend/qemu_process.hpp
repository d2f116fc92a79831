#pragma once
// The QEMU child process: forked with the fds it must inherit, killed with us
// (PR_SET_PDEATHSIG), and always reaped.
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "pagelab/kvm/file_descriptor.hpp"

namespace pagelab::lab {

class QemuProcess {
 public:
  // `stdio` becomes the child's stdin and stdout; `stderr_fd` its stderr; the fds in
  // `inherit` stay open across exec under the same numbers.
  QemuProcess(const std::string& binary, const std::vector<std::string>& args, int stdio,
              int stderr_fd, const std::vector<int>& inherit);
  ~QemuProcess();
  QemuProcess(const QemuProcess&) = delete;
  QemuProcess& operator=(const QemuProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // Exit status text ("exited (status 1)", "exited (signal 9)") once it has
  // exited, else nullopt. Reaps it.
  std::optional<std::string> poll_exit();
  // The CPU time the process has used so far, or nullopt once it is gone or where the
  // kernel will not tell.
  [[nodiscard]] std::optional<std::chrono::nanoseconds> cpu_time() const;
  // Puts every thread of the process on `cpu`, or (nullopt) on the CPUs the calling
  // thread may use; threads it starts later inherit it from theirs. False where a thread
  // refused (or the process is gone).
  bool keep_on(std::optional<unsigned> cpu);
  // Waits up to `grace` for it to exit, then SIGKILLs and reaps it.
  void reap(std::chrono::milliseconds grace);

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string status_;
};

}  // namespace pagelab::lab

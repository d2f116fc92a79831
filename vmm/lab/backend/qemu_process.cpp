#include "backend/qemu_process.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace pagelab::lab {
namespace {

std::string status_text(int wstatus) {
  if (WIFEXITED(wstatus)) return fmt::format("exited (status {})", WEXITSTATUS(wstatus));
  if (WIFSIGNALED(wstatus)) return fmt::format("exited (signal {})", WTERMSIG(wstatus));
  return "stopped";
}

}  // namespace

QemuProcess::QemuProcess(const std::string& binary, const std::vector<std::string>& args, int stdio,
                         int stderr_fd, const std::vector<int>& inherit) {
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> owned = args;
  owned.insert(owned.begin(), binary);
  std::vector<char*> argv;
  for (auto& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = getpid();

  pid_ = fork();
  if (pid_ < 0) {
    throw std::runtime_error(fmt::format("fork for {}: {}", binary, std::strerror(errno)));
  }
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl took effect
    dup2(stdio, STDIN_FILENO);
    dup2(stdio, STDOUT_FILENO);
    dup2(stderr_fd, STDERR_FILENO);
    for (int fd : inherit) {
      const int flags = fcntl(fd, F_GETFD);
      if (flags >= 0) fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
}

std::optional<std::string> QemuProcess::poll_exit() {
  if (reaped_) return status_;
  int wstatus = 0;
  if (waitpid(pid_, &wstatus, WNOHANG) == pid_) {
    reaped_ = true;
    status_ = status_text(wstatus);
    return status_;
  }
  return std::nullopt;
}

std::optional<std::chrono::nanoseconds> QemuProcess::cpu_time() const {
  if (reaped_) return std::nullopt;
  clockid_t clock{};
  timespec ts{};
  if (clock_getcpuclockid(pid_, &clock) != 0 || clock_gettime(clock, &ts) != 0) {
    return std::nullopt;
  }
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

bool QemuProcess::keep_on(std::optional<unsigned> cpu) {
  if (reaped_ || (cpu && *cpu >= CPU_SETSIZE)) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu) {
    CPU_SET(*cpu, &set);
  } else if (sched_getaffinity(0, sizeof set, &set) != 0) {
    return false;
  }
  // Threads come and go while the directory is read: one that went is not an error.
  std::error_code ec;
  std::filesystem::directory_iterator task(fmt::format("/proc/{}/task", pid_), ec);
  bool all = !ec;
  for (; !ec && task != std::filesystem::directory_iterator(); task.increment(ec)) {
    const auto tid = static_cast<pid_t>(std::strtol(task->path().filename().c_str(), nullptr, 10));
    all = (tid > 0 && sched_setaffinity(tid, sizeof set, &set) == 0) && all;
  }
  return all && !ec;
}

void QemuProcess::reap(std::chrono::milliseconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (!poll_exit() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!reaped_) {
    kill(pid_, SIGKILL);
    int wstatus = 0;
    while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = status_text(wstatus);
  }
}

QemuProcess::~QemuProcess() {
  if (pid_ > 0 && !reaped_) reap(std::chrono::milliseconds(0));
}

}  // namespace pagelab::lab

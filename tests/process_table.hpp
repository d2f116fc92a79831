#pragma once
// A snapshot of /proc for the tests that look for QEMU processes. Processes come and go
// while /proc is read: a file that was opened can fail to read with ESRCH once its
// process is reaped (an ifstream then throws from underflow), so every read here treats
// a vanished process as absent rather than as an error.
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace pagelab::test {

// The whole file, or "" when it cannot be opened or read (the process is gone).
inline std::string read_proc_file(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      text.clear();  // a partial read of a dying process is no reading at all
      break;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::string cmdline;  // arguments separated by spaces
  bool zombie = false;

  bool live() const { return !zombie; }
};

// Every process that could be read completely; those that vanish meanwhile are left out.
inline std::vector<ProcessInfo> process_table() {
  std::vector<ProcessInfo> table;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    ProcessInfo p;
    p.pid = std::stoi(name);
    p.cmdline = read_proc_file(e.path() / "cmdline");
    const auto status = read_proc_file(e.path() / "status");
    if (status.empty()) continue;
    std::replace(p.cmdline.begin(), p.cmdline.end(), '\0', ' ');
    p.zombie = status.find("State:\tZ") != std::string::npos;
    if (const auto at = status.find("PPid:\t"); at != std::string::npos) {
      p.ppid = static_cast<pid_t>(std::stol(status.substr(at + 6)));
    }
    table.push_back(std::move(p));
  }
  return table;
}

// Whether `pid` exists and is not a zombie.
inline bool process_alive(pid_t pid) {
  const auto status = read_proc_file("/proc/" + std::to_string(pid) + "/status");
  return !status.empty() && status.find("State:\tZ") == std::string::npos;
}

}  // namespace pagelab::test

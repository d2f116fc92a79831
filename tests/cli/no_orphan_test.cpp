// No QEMU and no shared-memory file outlives pagelab, even when pagelab is SIGKILLed in
// the middle of `run --backend qemu` (QEMU is started with -name guest=pagelab-PID-N and
// dies with its parent through PR_SET_PDEATHSIG; guest RAM is a memfd, not a file).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "process_table.hpp"

namespace pagelab::test {
namespace {

// Live (not zombie) processes whose command line names a QEMU guest of pagelab `pid`.
std::vector<pid_t> qemus_of(pid_t pid) {
  const std::string tag = "guest=pagelab-" + std::to_string(pid) + "-";
  std::vector<pid_t> found;
  for (const auto& p : process_table()) {
    if (p.live() && p.cmdline.find(tag) != std::string::npos) found.push_back(p.pid);
  }
  return found;
}

std::set<std::string> shm_files() {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm", ec)) {
    names.insert(e.path().filename().string());
  }
  return names;
}

class NoOrphan : public QemuTest {};

TEST_F(NoOrphan, SigkillDuringRunOnQemuLeavesNoQemuAndNoShmFile) {
  const auto shm_before = shm_files();
  // Enough scenarios (a QEMU each) that the run is still going when it is killed.
  std::vector<std::string> args = {PAGELAB_BINARY, "run", "--backend", "qemu"};
  for (int i = 0; i < 200; ++i)
    args.push_back(PAGELAB_SOURCE_DIR "/examples/stale_translation.pgl");
  const pid_t run = fork();
  if (run == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // Kill it once a few QEMUs have come and gone and one is running.
  std::vector<pid_t> seen;
  for (int i = 0; i < 3000 && seen.size() < 3; ++i) {
    for (pid_t q : qemus_of(run)) {
      if (std::find(seen.begin(), seen.end(), q) == seen.end()) seen.push_back(q);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<pid_t> running;
  for (int i = 0; i < 3000 && running.empty(); ++i) {
    running = qemus_of(run);
    if (running.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(kill(run, SIGKILL), 0);
  int status = 0;
  waitpid(run, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "pagelab finished before it was killed";
  ASSERT_FALSE(running.empty()) << "no QEMU of pagelab " << run << " was seen running";

  // A short grace period for the kernel to deliver PDEATHSIG and reap.
  std::vector<pid_t> left = qemus_of(run);
  for (int i = 0; i < 200 && !left.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    left = qemus_of(run);
  }
  EXPECT_TRUE(left.empty()) << left.size() << " QEMU process(es) of pagelab " << run
                            << " outlived it, e.g. " << left.front();
  for (pid_t q : left) kill(q, SIGKILL);  // do not leave them to the rest of the suite

  std::vector<std::string> new_files;
  for (const auto& f : shm_files()) {
    if (shm_before.count(f) == 0) new_files.push_back(f);
  }
  EXPECT_TRUE(new_files.empty()) << "new in /dev/shm: " << new_files.front();
}

TEST_F(NoOrphan, ANormalRunLeavesNoQemu) {
  // run_pagelab waits for the child; its QEMUs must be gone by then (QMP quit, reaped).
  const pid_t self = getpid();
  const auto r =
      run_pagelab({"run", "--backend", "qemu", PAGELAB_SOURCE_DIR "/examples/worked_example.pgl"});
  EXPECT_EQ(r.status, 0) << r.err;
  // The child's pid is gone; no QEMU anywhere names a pagelab that no longer exists.
  for (const auto& p : process_table()) {
    const auto at = p.cmdline.find("guest=pagelab-");
    if (!p.live() || at == std::string::npos || p.cmdline.find("qemu") == std::string::npos)
      continue;
    // pagelab names its QEMUs pagelab-PID-N; test fixtures use other names (pagelab-test-…).
    const auto digits =
        p.cmdline.substr(at + 14, p.cmdline.find_first_not_of("0123456789", at + 14) - (at + 14));
    if (digits.empty()) continue;
    const auto owner = std::stoi(digits);
    if (owner == self) continue;
    EXPECT_TRUE(process_alive(owner)) << "QEMU " << p.pid << " outlived pagelab " << owner;
  }
}

}  // namespace
}  // namespace pagelab::test

// `pagelab tour --backend qemu`: every mode on QEMU TCG, bad backend names, and no
// QEMU left behind when pagelab itself is SIGKILLed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "cli/run_pagelab.hpp"
#include "needs_backend.hpp"
#include "process_table.hpp"

namespace pagelab::test {
namespace {

// Children of `parent` whose command line mentions qemu.
std::vector<pid_t> qemu_children(pid_t parent) {
  std::vector<pid_t> found;
  for (const auto& p : process_table()) {
    if (p.ppid == parent && p.cmdline.find("qemu") != std::string::npos) found.push_back(p.pid);
  }
  return found;
}

class TourQemu : public QemuTest {};

TEST_F(TourQemu, EntersEveryModeOnQemu) {
  const auto r = run_pagelab({"tour", "--backend", "qemu"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "qemu-tcg"));
  EXPECT_TRUE(contains(r.out, "== 32-bit paging: entered"));
  EXPECT_TRUE(contains(r.out, "== PAE paging: entered"));
  EXPECT_TRUE(contains(r.out, "== IA-32e mode, 4-level paging: entered"));
  EXPECT_TRUE(contains(r.out, "== IA-32e mode, 5-level paging: entered"));
  EXPECT_TRUE(contains(r.out, "== back to real mode: entered"));
}

TEST_F(TourQemu, JsonNamesTheBackend) {
  const auto r = run_pagelab({"tour", "--backend", "qemu", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "\"backend\": \"qemu-tcg\""));
}

TEST(TourBackendOption, UnknownBackendIsAUsageError) {
  const auto r = run_pagelab({"tour", "--backend", "bochs"});
  EXPECT_EQ(r.status, 2);
  EXPECT_TRUE(contains(r.err, "kvm, qemu or auto"));
}

TEST_F(TourQemu, KillingPagelabTakesItsQemuDown) {
  const pid_t tour = fork();
  if (tour == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    execl(PAGELAB_BINARY, PAGELAB_BINARY, "tour", "--backend", "qemu", nullptr);
    _exit(127);
  }
  std::vector<pid_t> qemus;
  for (int i = 0; i < 2000 && qemus.empty(); ++i) {
    qemus = qemu_children(tour);
    if (qemus.empty()) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  kill(tour, SIGKILL);
  waitpid(tour, nullptr, 0);
  if (qemus.empty()) GTEST_SKIP() << "the tour finished before its QEMU was seen";
  for (int i = 0; i < 200 && process_alive(qemus.front()); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_FALSE(process_alive(qemus.front())) << "QEMU " << qemus.front() << " outlived pagelab";
}

}  // namespace
}  // namespace pagelab::test

#pragma once
// Runs the real `pagelab` binary (fork/exec, no shell quoting) and captures its exit
// status, stdout and stderr, for the CLI tests.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace pagelab::test {

struct ProcessResult {
  int status = -1;  // exit code; -1 when killed by a signal
  std::string out, err;
};

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline ProcessResult run_pagelab(std::vector<std::string> args) {
  char out_path[] = "/tmp/pagelab_test_out_XXXXXX";
  char err_path[] = "/tmp/pagelab_test_err_XXXXXX";
  const int out_fd = mkstemp(out_path);
  const int err_fd = mkstemp(err_path);
  ProcessResult r;
  if (out_fd < 0 || err_fd < 0) return r;
  args.insert(args.begin(), PAGELAB_BINARY);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  close(out_fd);
  close(err_fd);
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  unlink(out_path);
  unlink(err_path);
  return r;
}

// A shipped example, by file name.
inline std::string example(const std::string& name) {
  return std::string(PAGELAB_SOURCE_DIR "/examples/") + name;
}

// Every shipped example, in a stable order.
inline std::vector<std::string> example_files() {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(PAGELAB_SOURCE_DIR "/examples")) {
    if (e.path().extension() == ".pgl") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace pagelab::test

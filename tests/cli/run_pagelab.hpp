#pragma once
// Runs the real `pagelab` binary (fork/exec, no shell quoting) and captures its exit
// status, stdout and stderr, for the CLI tests.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

namespace pagelab::test {

struct ProcessResult {
  int status = -1;  // exit code; -1 when killed by a signal
  std::string out, err;
};

// How to run it, beyond the arguments.
struct RunSetup {
  std::vector<std::pair<std::string, std::string>> env;  // set in the child
  std::string stdout_path;  // stdout goes there instead of being captured ("/dev/full")
  // Called in the parent with the child's pid while it runs (e.g. to kill its QEMU).
  std::function<void(pid_t)> while_running;
  std::string stdin_path;  // the child's stdin (else it inherits ours)
};

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at the end
// of the test: tests leave nothing behind.
class TempDir {
 public:
  TempDir() {
    auto templ = (std::filesystem::temp_directory_path() / "pagelab_test_XXXXXX").string();
    if (mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // Writes `text` to the file `name` in it; returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << text;
    return file.string();
  }

 private:
  std::filesystem::path path_;
};

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline ProcessResult run_pagelab(std::vector<std::string> args, const RunSetup& setup = {}) {
  ProcessResult r;
  const TempDir dir;
  const auto out_path = (dir.path() / "out").string();
  const auto err_path = (dir.path() / "err").string();
  const auto& stdout_path = setup.stdout_path.empty() ? out_path : setup.stdout_path;
  const int out_fd = open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out_fd < 0 || err_fd < 0) return r;
  args.insert(args.begin(), PAGELAB_BINARY);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& [name, value] : setup.env) env.push_back(name + "=" + value);
  const pid_t pid = fork();
  if (pid == 0) {
    if (!setup.stdin_path.empty()) {
      const int in_fd = open(setup.stdin_path.c_str(), O_RDONLY);
      if (in_fd < 0) _exit(126);
      dup2(in_fd, STDIN_FILENO);
    }
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  if (setup.while_running) setup.while_running(pid);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  close(out_fd);
  close(err_fd);
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  if (setup.stdout_path.empty()) r.out = slurp(out_path);
  r.err = slurp(err_path);
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

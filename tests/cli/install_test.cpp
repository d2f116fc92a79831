// `cmake --install` of this build into a temporary prefix: pagelab lands in bin/ and
// runs, the man page help2man made names every command, and the bash completion,
// sourced in bash, completes commands, subcommands, options and their values.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_help.hpp"
#include "cli/run_pagelab.hpp"

namespace pagelab::test {
namespace {

namespace fs = std::filesystem;

// Runs argv[0] (looked up on $PATH) with stdout and stderr captured.
ProcessResult run_command(std::vector<std::string> args) {
  ProcessResult r;
  const TempDir dir;
  const auto out_path = (dir.path() / "out").string();
  const auto err_path = (dir.path() / "err").string();
  const int out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out_fd < 0 || err_fd < 0) return r;
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  close(out_fd);
  close(err_fd);
  r.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

// `cmake --install` of the build into a fresh prefix, removed at the end. cmake writes
// install_manifest.txt into the build directory: it is put back as it was (removed, or
// its old text restored), under a lock on the build directory so tests running at once
// do not restore each other's.
class InstalledPrefix {
 public:
  InstalledPrefix() {
    lock_fd_ = open(PAGELAB_BUILD_DIR, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock_fd_ >= 0) flock(lock_fd_, LOCK_EX);
    const fs::path manifest = fs::path(PAGELAB_BUILD_DIR) / "install_manifest.txt";
    if (fs::exists(manifest)) old_manifest_ = slurp(manifest);
    result_ = run_command(
        {PAGELAB_CMAKE_COMMAND, "--install", PAGELAB_BUILD_DIR, "--prefix", prefix().string()});
    if (old_manifest_) {
      std::ofstream(manifest, std::ios::binary | std::ios::trunc) << *old_manifest_;
    } else {
      std::error_code ec;
      fs::remove(manifest, ec);
    }
    if (lock_fd_ >= 0) close(lock_fd_);  // releases the lock
  }
  InstalledPrefix(const InstalledPrefix&) = delete;
  InstalledPrefix& operator=(const InstalledPrefix&) = delete;

  [[nodiscard]] fs::path prefix() const { return dir_.path() / "x"; }
  [[nodiscard]] const ProcessResult& result() const { return result_; }

 private:
  TempDir dir_;
  int lock_fd_ = -1;
  std::optional<std::string> old_manifest_;
  ProcessResult result_;
};

// The words the installed completion offers for `words` (the last one being completed),
// as bash prints COMPREPLY: one per line.
std::vector<std::string> complete(const fs::path& script, const std::vector<std::string>& words) {
  std::string array;
  for (const auto& w : words) array += " '" + w + "'";
  const auto r = run_command({"bash", "-c",
                              "source \"$1\" || exit 9\n"
                              "COMP_WORDS=(" +
                                  array +
                                  ")\n"
                                  "COMP_CWORD=$((${#COMP_WORDS[@]} - 1))\n"
                                  "COMP_LINE=\"${COMP_WORDS[*]}\"; COMP_POINT=${#COMP_LINE}\n"
                                  "_pagelab || exit 8\n"
                                  "printf '%s\\n' \"${COMPREPLY[@]}\"",
                              "bash", script.string()});
  EXPECT_EQ(r.status, 0) << r.err;
  std::vector<std::string> replies;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) replies.push_back(line);
  }
  return replies;
}

using Words = std::vector<std::string>;

TEST(Install, PutsPagelabInBinAndItRuns) {
  const InstalledPrefix installed;
  ASSERT_EQ(installed.result().status, 0) << installed.result().out << installed.result().err;
  const auto bin = installed.prefix() / "bin" / "pagelab";
  ASSERT_TRUE(fs::exists(bin)) << installed.result().out;
  const auto r = run_command({bin.string(), "--version"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "pagelab " PAGELAB_PROJECT_VERSION "\n");
  // The installed binary is the whole tool: it runs a command from anywhere.
  const auto decoded = run_command({bin.string(), "decode", "selector", "0x23"});
  EXPECT_EQ(decoded.status, 0) << decoded.err;
  EXPECT_TRUE(contains(decoded.out, "RPL 3")) << decoded.out;
}

TEST(Install, TheManPageNamesEveryCommand) {
  if (!PAGELAB_HAVE_HELP2MAN) {
    GTEST_SKIP() << "help2man was not found when this build was configured, so it has no man "
                    "page (scripts/setup.sh installs help2man)";
  }
  const InstalledPrefix installed;
  ASSERT_EQ(installed.result().status, 0) << installed.result().err;
  const auto page = installed.prefix() / "share" / "man" / "man1" / "pagelab.1";
  ASSERT_TRUE(fs::exists(page)) << installed.result().out;
  const auto text = slurp(page);
  EXPECT_TRUE(contains(text, ".TH PAGELAB \"1\"")) << text.substr(0, 400);
  EXPECT_TRUE(contains(text, PAGELAB_PROJECT_VERSION)) << "the version help2man read";
  for (const auto& path : command_paths()) {
    EXPECT_TRUE(contains(text, "pagelab " + joined(path)))
        << "pagelab.1 does not mention `pagelab " << joined(path) << "`";
  }
}

TEST(Install, TheBashCompletionCompletesCommandsAndOptions) {
  const InstalledPrefix installed;
  ASSERT_EQ(installed.result().status, 0) << installed.result().err;
  const auto script = installed.prefix() / "share" / "bash-completion" / "completions" / "pagelab";
  ASSERT_TRUE(fs::exists(script)) << installed.result().out;

  EXPECT_EQ(complete(script, {"pagelab", "ma"}), Words{"matrix"});
  // Every command the binary lists, and nothing else.
  EXPECT_EQ(complete(script, {"pagelab", ""}), help_subcommands());
  EXPECT_EQ(complete(script, {"pagelab", "decode", "cr"}), (Words{"cr0", "cr4"}));
  EXPECT_EQ(complete(script, {"pagelab", "modes", "--routes"}), Words{"--routes-only"});
  EXPECT_EQ(complete(script, {"pagelab", "decode", "cr0", "--e"}), Words{"--efer"});
  // Values: a CLI11 set, the backends, and the words after an option's value.
  EXPECT_EQ(complete(script, {"pagelab", "crash", "--in", ""}), (Words{"protected", "long"}));
  EXPECT_EQ(complete(script, {"pagelab", "run", "--backend", "q"}), Words{"qemu"});
  EXPECT_EQ(complete(script, {"pagelab", "crash", "--backend", "qemu", "t"}),
            Words{"triple-fault"});
  // Every option of a command, checked against its own --help.
  for (const auto& path : command_paths()) {
    auto words = path;
    words.insert(words.begin(), "pagelab");
    words.emplace_back("--");
    const auto offered = complete(script, words);
    for (const auto& option : help_long_options(path)) {
      EXPECT_NE(std::find(offered.begin(), offered.end(), option), offered.end())
          << "pagelab " << joined(path) << " " << option << " is not completed";
    }
  }
}

TEST(Install, TheReadmeNamesTheInstallCommand) {
  const auto readme = slurp(fs::path(PAGELAB_SOURCE_DIR) / "README.md");
  EXPECT_TRUE(contains(readme, "## Install"));
  EXPECT_TRUE(contains(readme, "cmake --install build --prefix"));
  for (const char* installed : {"bin/pagelab", "man1/pagelab.1", "completions/pagelab"}) {
    EXPECT_TRUE(contains(readme, installed)) << "the README does not say it installs " << installed;
  }
}

}  // namespace
}  // namespace pagelab::test

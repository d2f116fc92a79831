#include "pagelab/campaign/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace pagelab::campaign {

namespace {

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path, int err) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, path.string(), std::strerror(err)));
}

// The fd is closed on every path.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void write_file_atomically(const std::filesystem::path& path, const std::string& content) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  // A name no reader looks for (a leading dot, the writer's pid): a crash leaves at most
  // this, never a half-written finding under its real name.
  const auto temp = dir / fmt::format(".{}.tmp.{}", path.filename().string(), ::getpid());
  {
    Fd f{::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) fail("cannot create", temp, errno);
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(f.fd, content.data() + done, content.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::unlink(temp.c_str());
        fail("cannot write", temp, err);
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(f.fd) != 0) {
      const int err = errno;
      ::unlink(temp.c_str());
      fail("cannot sync", temp, err);
    }
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temp.c_str());
    fail("cannot rename into", path, err);
  }
  // The rename itself survives a power loss once the directory is synced.
  Fd d{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (d.fd >= 0) ::fsync(d.fd);
}

void prepare_findings_directory(const std::filesystem::path& dir) {
  if (dir.empty()) throw std::invalid_argument("--findings: empty directory name");
  std::error_code ec;
  const auto status = std::filesystem::status(dir, ec);
  if (std::filesystem::exists(status) && !std::filesystem::is_directory(status)) {
    throw std::invalid_argument(fmt::format("--findings {}: not a directory", dir.string()));
  }
  if (!std::filesystem::exists(status)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      throw std::invalid_argument(
          fmt::format("--findings {}: cannot create it: {}", dir.string(), ec.message()));
    }
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    throw std::invalid_argument(
        fmt::format("--findings {}: not writable: {}", dir.string(), std::strerror(errno)));
  }
}

}  // namespace pagelab::campaign

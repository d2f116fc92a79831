#include "pagelab/paging/text_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>
#include <cerrno>
#include <cstring>

namespace pagelab::paging {

namespace {

// Opens `path` for reading if it is a regular file within the size limit; throws
// TextFileError otherwise. The caller owns the descriptor.
int open_checked(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer before fstat refuses it.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw TextFileError(0, fmt::format("cannot open the file: {}", std::strerror(errno)));
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const int stat_errno = errno;
  std::string error;
  if (!stat_ok) {
    error = fmt::format("cannot read the file: {}", std::strerror(stat_errno));
  } else if (!S_ISREG(st.st_mode)) {
    error = S_ISDIR(st.st_mode) ? "is a directory, not a file" : "not a regular file";
  } else if (static_cast<std::size_t>(st.st_size) > MaxTextFileBytes) {
    error = fmt::format("the file has {} bytes, more than the limit of {} MiB", st.st_size,
                        MaxTextFileBytes >> 20);
  }
  if (!error.empty()) {
    ::close(fd);
    throw TextFileError(0, error);
  }
  return fd;
}

}  // namespace

TextLineReader::TextLineReader(const std::string& path) : fd_(open_checked(path)) {}

TextLineReader::~TextLineReader() {
  ::close(fd_);
}

bool TextLineReader::next(std::string_view& line) {
  for (;;) {
    const std::size_t nl = buffer_.find('\n', start_);
    if (nl != std::string::npos || eof_) {
      if (nl == std::string::npos && start_ == buffer_.size()) return false;
      const std::size_t end = nl == std::string::npos ? buffer_.size() : nl;
      ++line_;
      if (end - start_ > MaxTextLineBytes) {
        throw TextFileError(line_, fmt::format("the line has {} bytes, more than the limit of {}",
                                               end - start_, MaxTextLineBytes));
      }
      line = std::string_view(buffer_).substr(start_, end - start_);
      start_ = nl == std::string::npos ? buffer_.size() : nl + 1;
      return true;
    }
    if (buffer_.size() - start_ > MaxTextLineBytes) {
      throw TextFileError(
          line_ + 1, fmt::format("the line has more than {} bytes, the limit", MaxTextLineBytes));
    }
    buffer_.erase(0, start_);  // keep only the unfinished line
    start_ = 0;
    char chunk[65536];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw TextFileError(0, fmt::format("cannot read the file: {}", std::strerror(errno)));
    if (n == 0) {
      eof_ = true;
      continue;
    }
    read_ += static_cast<std::size_t>(n);
    if (read_ > MaxTextFileBytes) {  // it grew while we read it
      throw TextFileError(
          0, fmt::format("the file has more than the limit of {} MiB", MaxTextFileBytes >> 20));
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
}

std::string read_text_file(const std::string& path) {
  const int fd = open_checked(path);
  std::string text;
  std::string error;
  {
    char chunk[65536];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = fmt::format("cannot read the file: {}", std::strerror(errno));
        break;
      }
      if (n == 0) break;
      text.append(chunk, static_cast<std::size_t>(n));
      if (text.size() > MaxTextFileBytes) {  // it grew while we read it
        error = fmt::format("the file has more than the limit of {} MiB", MaxTextFileBytes >> 20);
        break;
      }
    }
  }
  ::close(fd);
  if (!error.empty()) throw TextFileError(0, error);
  unsigned line = 1;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nl = text.find('\n', start);
    const std::size_t end = nl == std::string::npos ? text.size() : nl;
    if (end - start > MaxTextLineBytes) {
      throw TextFileError(line, fmt::format("the line has {} bytes, more than the limit of {}",
                                            end - start, MaxTextLineBytes));
    }
    if (nl == std::string::npos) break;
    start = nl + 1;
    ++line;
  }
  return text;
}

}  // namespace pagelab::paging

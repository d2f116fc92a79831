#pragma once
// Reading a scenario or a table dump: a regular file only (not /dev/zero, a directory
// or /proc/self/mem), bounded in size and line length, so hostile input costs nothing.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pagelab::paging {

constexpr std::size_t MaxTextFileBytes = 16 << 20;
constexpr std::size_t MaxTextLineBytes = 4096;

// Why the file was refused; line() is 0 unless a line is too long (1-based).
class TextFileError : public std::runtime_error {
 public:
  TextFileError(unsigned line, const std::string& message)
      : std::runtime_error(message), line_(line) {}
  [[nodiscard]] unsigned line() const { return line_; }

 private:
  unsigned line_;
};

// The whole file. Throws TextFileError: cannot open (with the OS's reason), not a
// regular file, larger than MaxTextFileBytes, a line longer than MaxTextLineBytes.
std::string read_text_file(const std::string& path);

// The same file line by line, holding one chunk of it at a time (same checks, same
// errors: the constructor throws for the file, next() for a line).
class TextLineReader {
 public:
  explicit TextLineReader(const std::string& path);
  ~TextLineReader();
  TextLineReader(const TextLineReader&) = delete;
  TextLineReader& operator=(const TextLineReader&) = delete;
  // The next line without its newline (valid until the next call), false at the end.
  bool next(std::string_view& line);

 private:
  int fd_;
  std::string buffer_;
  std::size_t start_ = 0, read_ = 0;
  unsigned line_ = 0;
  bool eof_ = false;
};

}  // namespace pagelab::paging

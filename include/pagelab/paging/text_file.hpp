#pragma once
// Reading a scenario or a table dump: a regular file only (not /dev/zero, a directory
// or /proc/self/mem), bounded in size and line length, so hostile input costs nothing.
#include <cstddef>
#include <stdexcept>
#include <string>

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

}  // namespace pagelab::paging

#pragma once
// The one-line progress display of long runs (matrix, fuzz): redrawn in place at most
// ten times a second on a terminal, nothing at all when the stream is not a terminal.
#include <chrono>
#include <cstdio>
#include <string>

namespace pagelab::campaign {

class Progress {
 public:
  // enabled: usually is_terminal(stream).
  Progress(std::FILE* stream, bool enabled);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  [[nodiscard]] bool enabled() const { return enabled_; }
  // Cheap to call per case: the text is built only when a redraw is due.
  [[nodiscard]] bool due();
  void show(const std::string& line);
  // Erases the line (before a report is printed, and at the end).
  void clear();

 private:
  std::FILE* stream_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point last_{};
};

bool is_terminal(std::FILE* stream);

// "12.3k/s" style rates and "1m05s" style durations for progress lines.
std::string format_rate(double per_second);
std::string format_elapsed(std::chrono::steady_clock::duration elapsed);

}  // namespace pagelab::campaign

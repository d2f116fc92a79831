#include "pagelab/campaign/progress.hpp"

#include <unistd.h>

#include <fmt/core.h>

namespace pagelab::campaign {

bool is_terminal(std::FILE* stream) {
  return ::isatty(::fileno(stream)) == 1;
}

Progress::Progress(std::FILE* stream, bool enabled) : stream_(stream), enabled_(enabled) {}

Progress::~Progress() {
  clear();
}

bool Progress::due() {
  if (!enabled_) return false;
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && now - last_ < std::chrono::milliseconds(100)) return false;
  last_ = now;
  return true;
}

void Progress::show(const std::string& line) {
  if (!enabled_) return;
  // \r and erase-to-end-of-line: the line shrinks cleanly when a field gets shorter.
  fmt::print(stream_, "\r{}\x1b[K", line);
  std::fflush(stream_);
  shown_ = true;
}

void Progress::clear() {
  if (!enabled_ || !shown_) return;
  fmt::print(stream_, "\r\x1b[K");
  std::fflush(stream_);
  shown_ = false;
}

std::string format_rate(double per_second) {
  if (per_second >= 1e6) return fmt::format("{:.2f}M/s", per_second / 1e6);
  if (per_second >= 1e3) return fmt::format("{:.1f}k/s", per_second / 1e3);
  return fmt::format("{:.0f}/s", per_second);
}

std::string format_elapsed(std::chrono::steady_clock::duration elapsed) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  if (s >= 3600) return fmt::format("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  return fmt::format("{:.1f}s", static_cast<double>(ms) / 1000.0);
}

}  // namespace pagelab::campaign

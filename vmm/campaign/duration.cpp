#include "pagelab/campaign/duration.hpp"

#include <fmt/core.h>

#include <cctype>
#include <limits>
#include <stdexcept>

namespace pagelab::campaign {

std::chrono::milliseconds parse_duration(const std::string& text) {
  auto bad = [&](const char* why) {
    return std::invalid_argument(
        fmt::format("duration '{}': {} (e.g. 90s, 10m, 1h30m)", text, why));
  };
  if (text.empty()) throw bad("empty");
  std::uint64_t total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (std::isdigit(static_cast<unsigned char>(text[i])) == 0)
      throw bad("a number must come first");
    std::uint64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
      n = n * 10 + static_cast<unsigned>(text[i] - '0');
      if (n > 1'000'000'000) throw bad("too long");
      ++i;
    }
    std::uint64_t unit_ms = 1000;  // a bare number is seconds
    if (i < text.size()) {
      switch (text[i]) {
        case 's':
          unit_ms = 1000;
          break;
        case 'm':
          unit_ms = 60'000;
          break;
        case 'h':
          unit_ms = 3'600'000;
          break;
        default:
          throw bad("units are s, m and h");
      }
      ++i;
    } else if (total_ms != 0) {
      throw bad("a unit is missing");
    }
    total_ms += n * unit_ms;
    if (total_ms > 366ULL * 24 * 3'600'000) throw bad("longer than a year");
  }
  if (total_ms == 0) throw bad("must be more than zero");
  return std::chrono::milliseconds(total_ms);
}

}  // namespace pagelab::campaign

#pragma once
// Campaign lengths on the command line: "90", "90s", "10m", "2h", "1h30m".
#include <chrono>
#include <string>

namespace pagelab::campaign {

// Throws std::invalid_argument with a one-line reason for anything else, and for zero.
std::chrono::milliseconds parse_duration(const std::string& text);

}  // namespace pagelab::campaign

#include <cctype>
#include <charconv>
#include <string>

#include "commands.hpp"

namespace pagelab::cli {

std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  std::string digits;
  for (char c : text) {
    if (c != '_' && c != '\'') digits.push_back(c);
  }
  int base = 10;
  std::string_view body = digits;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    base = 16;
    body.remove_prefix(2);
  } else if (body.size() > 2 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B')) {
    base = 2;
    body.remove_prefix(2);
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value, base);
  if (body.empty() || ec == std::errc::invalid_argument || end != body.data() + body.size()) {
    throw UsageError(what + ": '" + text +
                     "' is not a number (use 0x.. hex, 0b.. binary or decimal)");
  }
  if (ec == std::errc::result_out_of_range) {
    throw UsageError(what + ": '" + text + "' does not fit in 64 bits");
  }
  return value;
}

}  // namespace pagelab::cli

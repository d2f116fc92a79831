#include "pagelab/paging/number.hpp"

#include <charconv>
#include <string>

namespace pagelab::paging {

std::optional<std::uint64_t> parse_number(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c != '_' && c != '\'') digits.push_back(c);
  }
  std::string_view body = digits;
  int base = 10;
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    base = 16;
    body.remove_prefix(2);
  } else if (body.size() > 2 && body[0] == '0' && (body[1] == 'b' || body[1] == 'B')) {
    base = 2;
    body.remove_prefix(2);
  }
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value, base);
  if (body.empty() || ec != std::errc{} || end != body.data() + body.size()) return std::nullopt;
  return value;
}

}  // namespace pagelab::paging

#include <string>

#include "commands.hpp"
#include "pagelab/paging/number.hpp"

namespace pagelab::cli {

std::uint64_t parse_u64(const std::string& text, const std::string& what) {
  if (auto value = paging::parse_number(text)) return *value;
  throw UsageError(what + ": '" + text +
                   "' is not a number (use 0x.. hex, 0b.. binary or decimal, at most 64 bits)");
}

}  // namespace pagelab::cli

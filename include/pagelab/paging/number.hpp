#pragma once
// Numbers as people write addresses and entries: 0x.. hex, 0b.. binary or decimal,
// with '_' or '\'' as digit separators (0xffff_ffff_ffff_f000). Shared by every
// parser (CLI arguments, table dumps, scenario files).
#include <cstdint>
#include <optional>
#include <string_view>

namespace pagelab::paging {

// nullopt when `text` is not such a number or does not fit in 64 bits.
std::optional<std::uint64_t> parse_number(std::string_view text);

}  // namespace pagelab::paging

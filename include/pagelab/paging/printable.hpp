#pragma once
// Untrusted text (a file name, a word of a scenario, what QEMU said) made safe to echo
// in a one-line message: control bytes and bytes that are not UTF-8 become \xNN, and
// it is cut at `max_bytes` with the full length said.
#include <cstddef>
#include <string>
#include <string_view>

namespace pagelab::paging {

std::string printable(std::string_view text, std::size_t max_bytes = 200);

}  // namespace pagelab::paging

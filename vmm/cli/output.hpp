#pragma once
// What every command prints goes through here: JSON that stays valid whatever bytes
// the input held, and messages made safe to echo on one line.
#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <string>

#include "pagelab/paging/printable.hpp"

namespace pagelab::cli {

using paging::printable;

// Bytes that are not UTF-8 (a title, a file name) become U+FFFD instead of throwing.
inline void print_json(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace pagelab::cli

#pragma once
// What every command prints goes through here: JSON that stays valid whatever bytes
// the input held, and messages made safe to echo on one line.
#include <fmt/core.h>

#include <algorithm>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "pagelab/lab/report/json.hpp"
#include "pagelab/paging/printable.hpp"

namespace pagelab::cli {

using paging::printable;

// Bytes that are not UTF-8 (a title, a file name) become U+FFFD instead of throwing.
inline void print_json(const nlohmann::json& j) {
  fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

// Prints a command's whole document (docs/json.md): the schema and command name first,
// and every number under one of `hex_keys` (addresses, entries, register values, at any
// depth) as a hex string.
inline void hex_fields(nlohmann::json& j, std::initializer_list<std::string_view> hex_keys) {
  if (j.is_array()) {
    for (auto& x : j) hex_fields(x, hex_keys);
    return;
  }
  if (!j.is_object()) return;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const bool listed = std::find(hex_keys.begin(), hex_keys.end(), it.key()) != hex_keys.end();
    if (listed && it->is_number_unsigned()) {
      *it = lab::report::hex(it->get<std::uint64_t>());
    } else if (listed && it->is_number_integer()) {
      *it = lab::report::hex(static_cast<std::uint64_t>(it->get<std::int64_t>()));
    } else {
      hex_fields(*it, hex_keys);
    }
  }
}

inline void print_document(std::string_view command, const nlohmann::json& body,
                           std::initializer_list<std::string_view> hex_keys = {}) {
  auto j = lab::report::document(command);
  j.update(body);
  hex_fields(j, hex_keys);
  print_json(j);
}

}  // namespace pagelab::cli

#pragma once
// Test-only: makes the oracle deliberately wrong in exactly one rule, so that tests can
// prove the generators (matrix, fuzz) catch a wrong judge, name the failing case and
// shrink it to a reproducer. Off unless a test or a hidden CLI option turns it on;
// nothing shipped sets it.
#include <optional>
#include <string_view>
#include <vector>

namespace pagelab::paging {

enum class PlantedBug {
  None,
  IgnoreWriteProtect,    // supervisor writes to read-only pages pass even with CR0.WP=1
  IgnoreUserBit,         // user accesses to supervisor pages pass
  IgnoreExecuteDisable,  // fetches from XD pages pass
  IgnoreSmap,            // SMAP never blocks
  IgnoreReservedBits,    // reserved bits are not checked
};

void set_planted_bug(PlantedBug bug);
[[nodiscard]] PlantedBug planted_bug();
[[nodiscard]] std::optional<PlantedBug> planted_bug_named(std::string_view name);
[[nodiscard]] std::string_view to_string(PlantedBug bug);
[[nodiscard]] std::vector<std::string_view> planted_bug_names();

}  // namespace pagelab::paging

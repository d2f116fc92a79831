#include "pagelab/paging/planted_bug.hpp"

#include <array>
#include <utility>

namespace pagelab::paging {

namespace {

PlantedBug planted = PlantedBug::None;

constexpr std::array<std::pair<PlantedBug, std::string_view>, 6> Names{{
    {PlantedBug::None, "none"},
    {PlantedBug::IgnoreWriteProtect, "ignore-wp"},
    {PlantedBug::IgnoreUserBit, "ignore-us"},
    {PlantedBug::IgnoreExecuteDisable, "ignore-xd"},
    {PlantedBug::IgnoreSmap, "ignore-smap"},
    {PlantedBug::IgnoreReservedBits, "ignore-rsvd"},
}};

}  // namespace

void set_planted_bug(PlantedBug bug) {
  planted = bug;
}

PlantedBug planted_bug() {
  return planted;
}

std::optional<PlantedBug> planted_bug_named(std::string_view name) {
  for (const auto& [bug, n] : Names) {
    if (n == name) return bug;
  }
  return std::nullopt;
}

std::string_view to_string(PlantedBug bug) {
  for (const auto& [b, n] : Names) {
    if (b == bug) return n;
  }
  return "?";
}

std::vector<std::string_view> planted_bug_names() {
  std::vector<std::string_view> out;
  for (const auto& [b, n] : Names) out.push_back(n);
  return out;
}

}  // namespace pagelab::paging

#include "pagelab/lab/tour/tour_examples.hpp"

#include <fmt/core.h>

#include <memory>

#include "pagelab/lab/scenario/engine_machine.hpp"
#include "pagelab/lab/scenario/scenario.hpp"

namespace pagelab::lab {

const std::string& worked_example_scenario() {
  static const std::string text = R"(# The worked example: indices 1/0/511/127, offset 0x5ce
mode 4level
table 0x803FE7F5CE PDPT at 0x4000
table 0x803FE7F5CE PD at 0x6000
map 0x803FE7F000 -> 0xC000 4k w
map 0x803FE00000 -> 0x200000 4k w
poke 0xC5C8 0x1122_3344_5566_7788
read 0x803FE7F5CE size 2
expect translate 0x803FE7F5CE = 0xc5ce
expect value 0x1122
read 0x803FE00000
expect translate 0x200000
)";
  return text;
}

const std::string& recursive_map_scenario() {
  static const std::string text = R"(# The recursive map: L4[511] points at the L4 table
mode 4level
table 0x803FE7F5CE PDPT at 0x4000
table 0x803FE7F5CE PD at 0x6000
map 0x803FE7F000 -> 0xC000 4k w
recursive 511
read 0xffff_ffff_ffff_f008
expect value 0x4007 mask 0xffff_ffff_ffff_ffdf
read 0xffff_ffff_ffe0_1000
expect translate 0x4000
read 0xffff_ffff_ffff_f000 user
expect pf err=0x5 cr2=0xffff_ffff_ffff_f000
)";
  return text;
}

std::vector<TourExample> run_tour_examples(const LabOptions& options, bool oracle_only) {
  std::vector<TourExample> out;
  const std::pair<const char*, const std::string*> examples[] = {
      {"worked example", &worked_example_scenario()}, {"recursive map", &recursive_map_scenario()}};
  for (const auto& [name, text] : examples) {
    const auto s = scenario::parse_scenario(*text, fmt::format("<tour: {}>", name));
    std::unique_ptr<scenario::Machine> machine;
    if (!oracle_only) machine = scenario::make_engine_machine(options);
    out.push_back({name, scenario::run_scenario(s, machine.get())});
  }
  return out;
}

std::string format_tour_examples(const std::vector<TourExample>& examples) {
  std::string out;
  for (const auto& e : examples) {
    out += fmt::format("== {} ({})\n", e.name, e.result.backend);
    if (!e.result.reason.empty()) out += fmt::format("   skipped: {}\n", e.result.reason);
    for (const auto& a : e.result.accesses) {
      out += fmt::format("   {}\n", a.text);
      for (const auto& s : a.walk) {
        out +=
            fmt::format("     {:<5} (Linux {:<3}) [{:>3}] @ {:#08x} = {:#018x}  {}\n", s.intel_name,
                        s.linux_name, s.index, s.entry_address.value(), s.value, s.meaning);
      }
      if (!a.allowed.empty()) out += fmt::format("     oracle: {}\n", a.allowed.front());
      if (!a.observed.empty()) out += fmt::format("     CPU:    {}\n", a.observed);
      out += fmt::format("     -> {}{}\n", scenario::to_string(a.verdict),
                         a.reason.empty() ? "" : ": " + a.reason);
      for (const auto& c : a.checks) {
        if (!c.passed) out += c.diff;
      }
    }
  }
  return out;
}

nlohmann::json tour_examples_json(const std::vector<TourExample>& examples) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& e : examples) {
    auto x = e.result.to_json();
    x["name"] = e.name;
    j.push_back(x);
  }
  return j;
}

bool tour_examples_ok(const std::vector<TourExample>& examples) {
  for (const auto& e : examples) {
    if (e.result.count(scenario::Verdict::Failed) > 0) return false;
  }
  return true;
}

}  // namespace pagelab::lab

#pragma once
// The tour's last leg: the design document's worked example (0x803FE7F5CE -> 0xc5ce)
// and the recursive map (0xffff_ffff_ffff_f000 reads the L4 table), run on the CPU
// as scenarios and shown walk by walk.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::lab {

struct TourExample {
  std::string name;  // "worked example", "recursive map"
  scenario::ScenarioResult result;
};

// The built-in scenario texts (the same as examples/worked_example.pgl and
// examples/recursive_map.pgl).
const std::string& worked_example_scenario();
const std::string& recursive_map_scenario();

// Runs both on a fresh Lab each (the experiment engine needs its own VM), or with the
// oracle alone when `oracle_only`. Accesses the platform cannot run are skipped with the
// reason; a scenario bug or a CPU disagreeing with the oracle is a failed access.
std::vector<TourExample> run_tour_examples(const LabOptions& options = {},
                                           bool oracle_only = false);
// Each access with the oracle's walk level by level and what the CPU did.
std::string format_tour_examples(const std::vector<TourExample>& examples);
nlohmann::json tour_examples_json(const std::vector<TourExample>& examples);
// True when no access failed.
bool tour_examples_ok(const std::vector<TourExample>& examples);

}  // namespace pagelab::lab

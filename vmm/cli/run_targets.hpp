#pragma once
// What `pagelab run` is asked to run: scenario files, or one case of a file
// (`FILE:LINE`), all parsed and checked before anything runs.
#include <optional>
#include <string>
#include <vector>

#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/lab/scenario/scenario_compare.hpp"
#include "pagelab/lab/scenario/scenario_run.hpp"

namespace pagelab::cli {

struct RunTarget {
  std::string argument;              // as given
  std::optional<unsigned> line;      // FILE:LINE: the line of the one access to report (an
                                     // `expect` line names its access)
  lab::scenario::Scenario scenario;  // for FILE:LINE already cut after that access
};

// Parses every argument (FILE or FILE:LINE). Throws UsageError (exit 2) for a file that
// cannot be read or parsed, a directory, an empty file, a scenario with no access, or a
// LINE that holds no access (nor an `expect` of one).
std::vector<RunTarget> load_run_targets(const std::vector<std::string>& arguments);

// FILE:LINE: keeps only the access on that line in the result (the accesses before it
// ran, unreported, so the case sees the same history as in the whole file).
void keep_only_line(lab::scenario::ScenarioResult& result, unsigned line);
void keep_only_line(lab::scenario::ScenarioComparison& comparison, unsigned line);

}  // namespace pagelab::cli

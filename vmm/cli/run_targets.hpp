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
  // Only the header and the statements up to the first access were kept (every one was
  // checked): run it with run_scenario_file, or load it whole.
  bool head_only = false;
};

// Parses every argument (FILE or FILE:LINE). Throws UsageError (exit 2) for a file that
// cannot be read or parsed, a directory, an empty file, a scenario with no access, or a
// LINE that holds no access (nor an `expect` of one).
// `heads_only`: keep only what RunTarget::head_only says for FILE arguments (a run that
// streams its report needs no more, however long the file).
std::vector<RunTarget> load_run_targets(const std::vector<std::string>& arguments,
                                        bool heads_only = false);

// FILE:LINE: keeps only the access on that line in the result (the accesses before it
// ran, unreported, so the case sees the same history as in the whole file).
void keep_only_line(lab::scenario::ScenarioResult& result, unsigned line);
void keep_only_line(lab::scenario::ScenarioComparison& comparison, unsigned line);

}  // namespace pagelab::cli

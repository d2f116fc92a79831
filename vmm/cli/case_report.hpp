#pragma once
// Results as CI systems read them: TAP13 on stdout (--tap) and JUnit XML in a file
// (--junit FILE), one test point per case. Every command that runs cases (run, modes,
// and the generators' matrix and fuzz) turns its cases into CaseLines and calls these.
//
// Known deviations (docs/json.md): in TAP a known deviation is `not ok ... # TODO known
// deviation NAME` — the platform did not do what the architecture says, so it is not
// an `ok`, but it is expected and does not fail the run (TAP's TODO); in JUnit, where
// there is no TODO, it is a passing test case with the deviation as a property and in
// its system-out.
#include <string>
#include <string_view>
#include <vector>

#include "pagelab/lab/report/json.hpp"

namespace pagelab::cli {

struct CaseLine {
  std::string suite;  // the group: a file, a backend, a from-mode (JUnit testsuite)
  std::string name;   // one line: "examples/nx_fetch.pgl:19 read 0x40000000 size 8 sup"
  lab::report::CaseVerdict verdict = lab::report::CaseVerdict::Passed;
  std::string reason;      // one line: why it failed or was skipped
  std::string deviation;   // the known deviation's name
  std::string details;     // more lines for a failure (diff, walk), may be empty
  std::string reproducer;  // a command that replays the case, may be empty
};

// The whole TAP13 stream: version line, plan, one test point per case.
std::string tap_document(const std::vector<CaseLine>& cases);
// One test point (numbered `number`), with a YAML block for failures.
std::string tap_line(unsigned number, const CaseLine& c);

// A JUnit XML document: one <testsuite> per distinct suite, in first-seen order.
std::string junit_document(std::string_view name, const std::vector<CaseLine>& cases);
// Writes it atomically; throws std::runtime_error naming the file on failure.
void write_junit(const std::string& path, std::string_view name,
                 const std::vector<CaseLine>& cases);

}  // namespace pagelab::cli

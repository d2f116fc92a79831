#pragma once
// Known ways a platform departs from the architecture in mode transitions, as data:
// what rule is broken, how to recognise a case of it, and how to reproduce it. A
// difference that matches none of these is an unexplained mismatch and fails the run.
#include <functional>
#include <string>
#include <vector>

#include "pagelab/lab/mode_matrix_case.hpp"

namespace pagelab::lab {

struct Deviation {
  std::string id;           // e.g. "pvm-legacy-paging-refused"
  std::string rule;         // the rule the platform breaks
  std::string description;  // what the platform does instead, where it was seen
  std::string reproducer;   // a pagelab command line that shows it
  // True when the case (expected verdict vs observation) is an instance of this.
  std::function<bool(const MatrixCase&)> matches;
};

const std::vector<Deviation>& known_deviations();

// The first deviation in `list` matching the case, or nullptr.
const Deviation* find_deviation(const MatrixCase& c, const std::vector<Deviation>& list);

}  // namespace pagelab::lab

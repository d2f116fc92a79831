#pragma once
// The guided tour: the probe climbs from real mode through every paging mode the
// platform allows and back down, reporting the registers it sees after each step. A
// mode the platform will not enter is reported with the reason the probe observed.
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/lab/machine/lab.hpp"
#include "pagelab/lab/machine/probe_report.hpp"

namespace pagelab::lab {

struct TourStep {
  std::string action;   // "CR0.PG <- 1", "far jump to the 64-bit code segment"
  ProbeReport report;   // what the probe saw afterwards
  std::string failure;  // empty when the step did what the architecture says
};

enum class StopOutcome { Entered, Refused, Unsupported, Failed };
std::string_view to_string(StopOutcome outcome);

struct TourStop {
  std::string mode;  // "real mode", "32-bit paging", ...
  StopOutcome outcome = StopOutcome::Entered;
  std::string reason;  // why it was refused, unsupported or failed
  std::vector<TourStep> steps;
};

struct Tour {
  std::string backend = "kvm";
  std::vector<TourStop> stops;
  // True when every mode the platform allows was entered and left as the architecture
  // says (refused and unsupported modes do not count against it).
  [[nodiscard]] bool ok() const;
  [[nodiscard]] nlohmann::json to_json() const;
};

// Runs the tour on a freshly booted lab. `on_step` sees each step as it completes
// (for progress output); `on_stop` each finished stop.
Tour run_tour(Lab& lab, const std::function<void(const TourStop&, const TourStep&)>& on_step = {},
              const std::function<void(const TourStop&)>& on_stop = {});

}  // namespace pagelab::lab

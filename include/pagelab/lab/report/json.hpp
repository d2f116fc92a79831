#pragma once
// The conventions every command's JSON shares (docs/json.md, schema "pagelab/1"): a
// schema version at the top, 64-bit values as hex strings (as JSON numbers they lose
// precision above 2^53 in jq and JavaScript), one set of verdict names, outcomes as
// fields. Lab rooms and the CLI build their JSON with these so the names cannot drift.
#include <fmt/core.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace pagelab::lab::report {

inline constexpr std::string_view kSchema = "pagelab/1";

// "0x8000000000200003": the form of every address, entry, control-register value and
// error code in the JSON.
inline std::string hex(std::uint64_t value) {
  return fmt::format("{:#x}", value);
}

// The verdict of one case, the same four words in every command.
enum class CaseVerdict { Passed, Failed, Skipped, KnownDeviation };

constexpr std::string_view to_string(CaseVerdict v) {
  switch (v) {
    case CaseVerdict::Passed:
      return "passed";
    case CaseVerdict::Failed:
      return "failed";
    case CaseVerdict::Skipped:
      return "skipped";
    case CaseVerdict::KnownDeviation:
      return "known-deviation";
  }
  return "failed";
}

// The top of a command's document: {"schema": "pagelab/1", "command": NAME}.
inline nlohmann::json document(std::string_view command) {
  return nlohmann::json{{"schema", std::string(kSchema)}, {"command", std::string(command)}};
}

// Counts keyed by verdict, every key present (0 when none).
struct VerdictCounts {
  unsigned passed = 0, failed = 0, skipped = 0, known_deviation = 0;
  void add(CaseVerdict v, unsigned n = 1) {
    switch (v) {
      case CaseVerdict::Passed:
        passed += n;
        break;
      case CaseVerdict::Failed:
        failed += n;
        break;
      case CaseVerdict::Skipped:
        skipped += n;
        break;
      case CaseVerdict::KnownDeviation:
        known_deviation += n;
        break;
    }
  }
  [[nodiscard]] unsigned total() const { return passed + failed + skipped + known_deviation; }
  [[nodiscard]] nlohmann::json json() const {
    return {{"passed", passed},
            {"failed", failed},
            {"skipped", skipped},
            {"known-deviation", known_deviation}};
  }
};

}  // namespace pagelab::lab::report

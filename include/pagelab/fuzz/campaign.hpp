#pragma once
// A fuzz campaign: case numbers of one seed (this shard's share), generated, run in
// batches on every chosen backend, every disagreement classified (known deviation by
// name; backend vs oracle; with several backends, backends vs each other), the new ones
// shrunk and written as `.pgl` reproducers (atomically), deduplicated by signature.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pagelab/campaign/shard.hpp"
#include "pagelab/fuzz/generator.hpp"
#include "pagelab/fuzz/runner.hpp"
#include "pagelab/lab/backend/backend.hpp"

namespace pagelab::fuzz {

struct Finding {
  std::string signature, kind, backend;
  paging::PagingMode mode = paging::PagingMode::Level4;
  unsigned level = 0;
  std::string rule;
  std::uint64_t seed = 0, case_number = 0;
  std::string observed;              // what the backend did at the minimal case's disagreement
  std::vector<std::string> allowed;  // what the architecture allows there
  std::string reproducer;            // the .pgl text
  unsigned lines = 0;
  std::optional<std::filesystem::path> file;
  unsigned shrink_runs = 0;
  std::uint64_t count = 1;  // cases with this signature so far
  [[nodiscard]] nlohmann::json to_json() const;
};

// A disagreement that did not happen again when its case ran alone: what earlier cases
// of its batch (or earlier batches) left behind made it, so it is no finding and has no
// shrunk reproducer; its report and a command that runs the batches before it again.
struct Unconfirmed {
  std::string signature, backend;
  paging::PagingMode mode = paging::PagingMode::Level4;
  std::uint64_t seed = 0, case_number = 0, batch_first = 0;
  std::string case_text;  // the case as a .pgl (fails only after the cases before it)
  std::string report;     // what the engine said in the batch
  std::string rerun;      // a `pagelab fuzz` command line from a few batches before
  std::optional<std::filesystem::path> file;
  [[nodiscard]] nlohmann::json to_json() const;
};

struct ModeStats {
  std::uint64_t cases = 0, failed = 0, skipped = 0, known = 0, accesses = 0, exits = 0;
  double seconds = 0;  // running batches (and shrinking) in this mode
  std::optional<std::string> unavailable;
  std::map<std::string, std::uint64_t> skip_reasons;
};

struct CampaignSummary {
  std::uint64_t seed = 0;
  std::string shard, profile;
  std::vector<std::string> backends;
  unsigned jobs = 1;
  std::uint64_t cases = 0;  // cases run (each on every backend)
  std::uint64_t accesses = 0, exits = 0;
  double seconds = 0;
  std::string stopped_by;                                         // "cases", "time", "signal"
  std::map<std::string, std::map<std::string, ModeStats>> modes;  // backend -> mode -> stats
  std::map<std::string, std::uint64_t> findings;                  // signature -> cases
  std::map<std::string, std::uint64_t> known_deviations;          // name -> cases
  // Disagreements that did not happen again when the case ran alone on fresh data.
  std::map<std::string, std::uint64_t> unconfirmed;
  std::uint64_t backends_differ_allowed = 0;  // accesses where backends differ, both allowed
  std::vector<std::string> notes;             // platform notes of the engines
  [[nodiscard]] nlohmann::json to_json() const;
  [[nodiscard]] std::string to_text() const;
};

struct CampaignOptions {
  std::uint64_t seed = 1;
  std::uint64_t first = 0;             // the first case number
  std::optional<std::uint64_t> cases;  // case numbers first..first+cases-1 (this shard's share)
  std::optional<std::chrono::milliseconds> time;
  Profile profile = Profile::All;
  std::vector<paging::PagingMode> modes;  // empty: every mode
  std::optional<std::filesystem::path> findings;
  campaign::Shard shard;
  bool strict = false;
  std::vector<lab::BackendKind> backends = {lab::BackendKind::Qemu};
  std::size_t batch_cases = DefaultBatchCases;
  // Workers, each with its own machines (one per backend and mode): batch n of a mode
  // goes to worker n % jobs (which one changes nothing a finding says: each is confirmed
  // alone, on machines of its own, before it is reported).
  unsigned jobs = 1;
  // Keep worker j's thread and machines on the j-th CPU this process may use, where
  // there is one for each worker (they take turns: sharing a CPU is cheaper than two).
  bool pin_workers = true;
  std::function<void(const Finding&)> on_finding;  // a new signature (written already)
  // The first unconfirmed case of a signature (written already, with --findings).
  std::function<void(const Unconfirmed&)> on_unconfirmed;
  // Called after each batch: cases so far, findings so far, elapsed.
  std::function<void(std::uint64_t, std::uint64_t, std::chrono::steady_clock::duration)>
      on_progress;
  std::function<bool()> stop_requested;
};

CampaignSummary run_campaign(const CampaignOptions& options);

// "4level" -> Level4 ("32bit", "pae", "4level", "5level").
std::optional<paging::PagingMode> mode_named(const std::string& name);

}  // namespace pagelab::fuzz

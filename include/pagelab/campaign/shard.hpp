#pragma once
// Splitting one seed space (the fuzzer) or one case list (the matrix) across machines
// without overlap: shard K of N owns the case numbers n with n % N == K - 1.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace pagelab::campaign {

struct Shard {
  unsigned index = 1;  // 1-based: "--shard 2/4" is index 2 of count 4
  unsigned count = 1;
  [[nodiscard]] bool owns(std::uint64_t case_number) const {
    return case_number % count == index - 1;
  }
  [[nodiscard]] bool whole() const { return count == 1; }
  [[nodiscard]] std::string describe() const;  // "2/4"
};

// Reads an environment variable (std::getenv by default; tests pass their own).
using Environment = std::function<std::optional<std::string>(const std::string&)>;
Environment process_environment();

// "K/N" with 1 <= K <= N <= 2^20, or "auto": the array index of a batch scheduler's job
// array — Slurm (SLURM_ARRAY_TASK_ID, 0-based or from SLURM_ARRAY_TASK_MIN, with
// SLURM_ARRAY_TASK_COUNT), Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX, 0-based, with the
// count in PAGELAB_SHARD_COUNT, since Kubernetes does not export it) — or 1/1 outside one.
// Throws std::invalid_argument with a one-line reason on anything else.
Shard parse_shard(const std::string& text, const Environment& env = process_environment());

}  // namespace pagelab::campaign

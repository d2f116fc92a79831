#include "pagelab/campaign/shard.hpp"

#include <fmt/core.h>

#include <charconv>
#include <cstdlib>
#include <stdexcept>

namespace pagelab::campaign {

namespace {

constexpr unsigned MaxShards = 1U << 20;

std::optional<unsigned> parse_unsigned(std::string_view text) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || p != end) return std::nullopt;
  return value;
}

unsigned env_number(const Environment& env, const std::string& name) {
  const auto text = env(name);
  const auto value = text ? parse_unsigned(*text) : std::nullopt;
  if (!value) {
    throw std::invalid_argument(fmt::format("--shard auto: {} is {}", name,
                                            text ? "'" + *text + "', not a number" : "not set"));
  }
  return *value;
}

Shard checked(unsigned index, unsigned count, const std::string& from) {
  if (count == 0 || count > MaxShards || index == 0 || index > count) {
    throw std::invalid_argument(
        fmt::format("--shard {}: want K/N with 1 <= K <= N <= {} (shard K of N)", from, MaxShards));
  }
  return Shard{index, count};
}

}  // namespace

std::string Shard::describe() const {
  return fmt::format("{}/{}", index, count);
}

Environment process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Shard parse_shard(const std::string& text, const Environment& env) {
  if (text == "auto") {
    if (env("SLURM_ARRAY_TASK_ID")) {
      const unsigned id = env_number(env, "SLURM_ARRAY_TASK_ID");
      const unsigned min =
          env("SLURM_ARRAY_TASK_MIN") ? env_number(env, "SLURM_ARRAY_TASK_MIN") : 0;
      const unsigned count = env_number(env, "SLURM_ARRAY_TASK_COUNT");
      if (id < min)
        throw std::invalid_argument(
            "--shard auto: SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN");
      return checked(id - min + 1, count, fmt::format("auto (Slurm task {} of {})", id, count));
    }
    if (env("JOB_COMPLETION_INDEX")) {
      const unsigned id = env_number(env, "JOB_COMPLETION_INDEX");
      const unsigned count = env_number(env, "PAGELAB_SHARD_COUNT");
      return checked(id + 1, count, fmt::format("auto (Kubernetes index {} of {})", id, count));
    }
    return Shard{};
  }
  const auto slash = text.find('/');
  if (slash == std::string::npos) {
    throw std::invalid_argument(fmt::format("--shard {}: want K/N (e.g. 2/4) or auto", text));
  }
  const auto k = parse_unsigned(std::string_view(text).substr(0, slash));
  const auto n = parse_unsigned(std::string_view(text).substr(slash + 1));
  if (!k || !n)
    throw std::invalid_argument(fmt::format("--shard {}: want K/N (e.g. 2/4) or auto", text));
  return checked(*k, *n, text);
}

}  // namespace pagelab::campaign

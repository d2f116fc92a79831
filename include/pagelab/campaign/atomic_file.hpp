#pragma once
// Findings survive a SIGKILL at any moment: a file is written beside its final name,
// synced, then renamed over it, so a reader sees the whole file or none.
#include <filesystem>
#include <string>

namespace pagelab::campaign {

// Writes `content` to `path` atomically. Throws std::runtime_error naming the path and
// errno's text.
void write_file_atomically(const std::filesystem::path& path, const std::string& content);

// A directory findings can be written to: created (with parents) when missing.
// Throws std::invalid_argument with a one-line reason when it is a file or unwritable.
void prepare_findings_directory(const std::filesystem::path& dir);

}  // namespace pagelab::campaign

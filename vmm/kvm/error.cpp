#include "pagelab/kvm/error.hpp"

#include <fmt/format.h>

#include <cstring>

namespace pagelab::kvm {
namespace {

std::string message(const std::string& operation, int error_number, const std::string& detail) {
  if (error_number == 0) {
    return detail.empty() ? operation : fmt::format("{}: {}", operation, detail);
  }
  std::string text =
      fmt::format("{}: {} (errno {})", operation, std::strerror(error_number), error_number);
  if (!detail.empty()) {
    text += ": " + detail;
  }
  return text;
}

}  // namespace

KvmError::KvmError(std::string operation, int error_number)
    : KvmError(std::move(operation), error_number, std::string{}) {}

KvmError::KvmError(std::string operation, int error_number, const std::string& detail)
    : std::runtime_error(message(operation, error_number, detail)),
      operation_(std::move(operation)),
      errno_(error_number) {}

}  // namespace pagelab::kvm

#pragma once
// Every failed KVM ioctl becomes a KvmError naming the ioctl and the errno, so the
// CLI can print one actionable line ("KVM_CREATE_VM: Device or resource busy").
#include <stdexcept>
#include <string>

namespace pagelab::kvm {

class KvmError : public std::runtime_error {
 public:
  // what(): "<operation>: <strerror> (errno N)". With error_number 0 (the call
  // "succeeded" but did not do what was asked, e.g. KVM_GET_MSRS returning 0
  // entries) the strerror part is left out and only the detail is shown.
  KvmError(std::string operation, int error_number);
  // what(): "<operation>: <strerror> (errno N): <detail>".
  KvmError(std::string operation, int error_number, const std::string& detail);
  [[nodiscard]] const std::string& operation() const { return operation_; }
  [[nodiscard]] int error_number() const { return errno_; }

 private:
  std::string operation_;
  int errno_;
};

}  // namespace pagelab::kvm

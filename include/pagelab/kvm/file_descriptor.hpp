#pragma once
// Owning wrappers for the kernel objects KVM hands out: file descriptors (/dev/kvm,
// VM, vCPU) and memory mappings (kvm_run, guest RAM). Move-only; released exactly once.
#include <cstddef>

namespace pagelab::kvm {

class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& other) noexcept;
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  ~FileDescriptor();

  [[nodiscard]] int get() const { return fd_; }
  [[nodiscard]] bool valid() const { return fd_ >= 0; }
  // Gives up ownership; the caller closes.
  [[nodiscard]] int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// An mmap()ed region, unmapped on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* address, std::size_t length) : address_(address), length_(length) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  ~Mapping();

  [[nodiscard]] void* get() const { return address_; }
  [[nodiscard]] std::size_t size() const { return length_; }

 private:
  void reset();
  void* address_ = nullptr;
  std::size_t length_ = 0;
};

}  // namespace pagelab::kvm

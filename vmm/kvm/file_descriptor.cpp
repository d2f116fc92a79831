#include "pagelab/kvm/file_descriptor.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <utility>

namespace pagelab::kvm {

FileDescriptor::FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    reset(other.release());
  }
  return *this;
}

FileDescriptor::~FileDescriptor() {
  reset();
}

int FileDescriptor::release() {
  return std::exchange(fd_, -1);
}

void FileDescriptor::reset(int fd) {
  if (fd_ >= 0) {
    // close() errors cannot be acted on for these fds; the kernel frees them anyway.
    ::close(fd_);
  }
  fd_ = fd;
}

Mapping::Mapping(Mapping&& other) noexcept
    : address_(std::exchange(other.address_, nullptr)), length_(std::exchange(other.length_, 0)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  if (this != &other) {
    reset();
    address_ = std::exchange(other.address_, nullptr);
    length_ = std::exchange(other.length_, 0);
  }
  return *this;
}

Mapping::~Mapping() {
  reset();
}

void Mapping::reset() {
  if (address_ != nullptr) {
    ::munmap(address_, length_);
    address_ = nullptr;
    length_ = 0;
  }
}

}  // namespace pagelab::kvm

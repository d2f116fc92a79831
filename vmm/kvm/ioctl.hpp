#pragma once
// Private to the kvm layer: one place that turns a failed ioctl into a KvmError
// named after the request, so no call site can forget the name.
#include <sys/ioctl.h>

#include <cerrno>

#include "pagelab/kvm/error.hpp"

namespace pagelab::kvm::detail {

// Retries on EINTR (except KVM_RUN, which handles EINTR itself and never uses this).
template <typename Arg>
int checked_ioctl(int fd, unsigned long request, const char* name, Arg arg) {
  for (;;) {
    const int result = ::ioctl(fd, request, arg);
    if (result >= 0) {
      return result;
    }
    if (errno != EINTR) {
      throw KvmError(name, errno);
    }
  }
}

}  // namespace pagelab::kvm::detail

// Names the request after its macro: KVM_IOCTL(fd, KVM_CREATE_VM, 0).
#define PAGELAB_KVM_IOCTL(fd, request, arg) \
  ::pagelab::kvm::detail::checked_ioctl((fd), (request), #request, (arg))

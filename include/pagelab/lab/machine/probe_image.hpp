#pragma once
// The probe image embedded in this program (guest/*.S, see guest/CMakeLists.txt).
#include <cstdint>
#include <span>

#include "pagelab/paging/address.hpp"

namespace pagelab::lab {

struct ProbeImage {
  std::span<const std::uint8_t> bytes;
  paging::GuestPhys load_address;
  paging::GuestPhys gdt;
  std::uint32_t gdt_size = 0;
};

// The embedded image with its header checked (magic, ABI version, bounds); throws
// std::runtime_error if the build produced something else.
const ProbeImage& probe_image();

}  // namespace pagelab::lab

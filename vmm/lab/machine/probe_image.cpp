#include "pagelab/lab/machine/probe_image.hpp"

#include <fmt/core.h>

#include <cstring>
#include <stdexcept>

#include "pagelab/probe_abi.h"

extern "C" const std::uint8_t pagelab_probe_image_begin[];
extern "C" const std::uint8_t pagelab_probe_image_end[];

namespace pagelab::lab {

namespace {

std::uint32_t u32_at(std::span<const std::uint8_t> b, std::size_t off) {
  std::uint32_t v = 0;
  std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}

ProbeImage load() {
  ProbeImage img;
  img.bytes = {pagelab_probe_image_begin, pagelab_probe_image_end};
  img.load_address = paging::GuestPhys(PROBE_LOAD_GPA);
  if (img.bytes.size() < PROBE_HDR_END_MARK + 4 || img.bytes.size() > PROBE_MAX_SIZE) {
    throw std::runtime_error(
        fmt::format("embedded probe image has a bad size ({} bytes)", img.bytes.size()));
  }
  if (u32_at(img.bytes, PROBE_HDR_MAGIC) != PROBE_HDR_MAGIC_LO ||
      u32_at(img.bytes, PROBE_HDR_MAGIC + 4) != PROBE_HDR_MAGIC_HI) {
    throw std::runtime_error("embedded probe image lacks the PAGLROBE header");
  }
  if (u32_at(img.bytes, PROBE_HDR_VERSION) != PROBE_ABI_VERSION) {
    throw std::runtime_error("embedded probe image was built for another probe ABI version");
  }
  img.gdt = paging::GuestPhys(u32_at(img.bytes, PROBE_HDR_GDT));
  img.gdt_size = u32_at(img.bytes, PROBE_HDR_GDT_SIZE);
  const auto end = u32_at(img.bytes, PROBE_HDR_END_MARK);
  if (img.gdt.value() < PROBE_LOAD_GPA || img.gdt.value() + img.gdt_size > end ||
      end != PROBE_LOAD_GPA + img.bytes.size()) {
    throw std::runtime_error("embedded probe image header is inconsistent");
  }
  return img;
}

}  // namespace

const ProbeImage& probe_image() {
  static const ProbeImage image = load();
  return image;
}

}  // namespace pagelab::lab

// GDT layouts and Linux selector names (segment_layouts.hpp).
#include "segment_layouts.hpp"

#include <fmt/core.h>

#include <cstring>
#include <sstream>

#include "commands.hpp"
#include "output.hpp"
#include "pagelab/lab/machine/probe_image.hpp"

namespace pagelab::cli {

namespace {

// Flat segments, base 0, limit 0xfffff with 4 KiB granularity (4 GiB), present.
constexpr std::uint64_t KernelCode32 = 0x00cf9a000000ffff;  // DPL 0, code, readable, D=1
constexpr std::uint64_t KernelData = 0x00cf92000000ffff;    // DPL 0, data, writable
constexpr std::uint64_t UserCode32 = 0x00cffa000000ffff;    // DPL 3, code, readable, D=1
constexpr std::uint64_t UserData = 0x00cff2000000ffff;      // DPL 3, data, writable
constexpr std::uint64_t KernelCode64 = 0x00af9a000000ffff;  // DPL 0, code, L=1
constexpr std::uint64_t UserCode64 = 0x00affa000000ffff;    // DPL 3, code, L=1

struct NamedSelector {
  std::uint16_t value;
  const char* name;
  const char* layout;
};

// arch/x86/include/asm/segment.h: i386 2.4 (GDT entries 2-5), i386 since 2.6
// (entries 12-15), x86-64.
constexpr NamedSelector kLinuxSelectors[] = {
    {0x10, "__KERNEL_CS", "i386 Linux 2.4"},  {0x18, "__KERNEL_DS", "i386 Linux 2.4"},
    {0x23, "__USER_CS", "i386 Linux 2.4"},    {0x2b, "__USER_DS", "i386 Linux 2.4"},
    {0x60, "__KERNEL_CS", "i386 Linux 2.6+"}, {0x68, "__KERNEL_DS", "i386 Linux 2.6+"},
    {0x73, "__USER_CS", "i386 Linux 2.6+"},   {0x7b, "__USER_DS", "i386 Linux 2.6+"},
    {0x08, "__KERNEL32_CS", "x86-64 Linux"},  {0x10, "__KERNEL_CS", "x86-64 Linux"},
    {0x18, "__KERNEL_DS", "x86-64 Linux"},    {0x23, "__USER32_CS", "x86-64 Linux"},
    {0x2b, "__USER_DS", "x86-64 Linux"},      {0x33, "__USER_CS", "x86-64 Linux"},
};

}  // namespace

GdtLayout gdt_layout(const std::string& spec) {
  if (spec == "probe") {
    const auto& image = lab::probe_image();
    const auto offset = image.gdt.value() - image.load_address.value();
    GdtLayout g{"probe", {}};
    for (std::uint32_t at = 0; at + 8 <= image.gdt_size; at += 8) {
      std::uint64_t q = 0;
      std::memcpy(&q, image.bytes.data() + offset + at, sizeof q);
      g.entries.push_back(q);
    }
    return g;
  }
  if (spec == "linux32") return {"linux32", {0, 0, KernelCode32, KernelData, UserCode32, UserData}};
  if (spec == "linux64") {
    return {"linux64",
            {0, KernelCode32, KernelCode64, KernelData, UserCode32, UserData, UserCode64}};
  }
  GdtLayout g{"given", {}};
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) g.entries.push_back(parse_u64(item, "--gdt"));
  if (g.entries.empty()) {
    throw UsageError("--gdt: probe, linux32, linux64, or descriptor values separated by commas");
  }
  return g;
}

std::vector<std::string> linux_selector_names(std::uint16_t selector) {
  std::vector<std::string> out;
  for (const auto& s : kLinuxSelectors) {
    if (s.value == selector) out.push_back(fmt::format("{} ({})", s.name, s.layout));
  }
  return out;
}

}  // namespace pagelab::cli

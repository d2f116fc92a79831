#pragma once
// GDT layouts `explain SEL:OFFSET` can segment through (the probe's own, and Linux's
// flat ones), and the names Linux gives well-known selectors (`decode selector`).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pagelab::cli {

struct GdtLayout {
  std::string name;                    // "probe", "linux32", "linux64"
  std::vector<std::uint64_t> entries;  // descriptor quadwords, index 0 first
};

// "probe" (the GDT in the probe image), "linux32" (i386 Linux 2.4: flat 4 GiB kernel
// and user segments at 0x10/0x18/0x23/0x2b), "linux64" (x86-64 Linux: 0x10 __KERNEL_CS,
// 0x18 __KERNEL_DS, 0x23 __USER32_CS, 0x2b __USER_DS, 0x33 __USER_CS), or a comma
// separated list of descriptor values. Throws UsageError for anything else.
GdtLayout gdt_layout(const std::string& spec);

// The Linux names of a selector value, e.g. 0x23: "__USER_CS (i386 Linux 2.4)",
// "__USER32_CS (x86-64 Linux)"; empty when no layout names it.
std::vector<std::string> linux_selector_names(std::uint16_t selector);

}  // namespace pagelab::cli

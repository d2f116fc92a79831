#pragma once
// Parses QEMU's "info registers" text (x86_cpu_dump_state) into KVM's register
// structs, so the diagnostics read the same way on both backends.
#include <string_view>

#include "pagelab/lab/backend/backend.hpp"

namespace pagelab::lab {

MachineRegisters parse_qemu_registers(std::string_view text);

}  // namespace pagelab::lab

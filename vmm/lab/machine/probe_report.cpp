#include "pagelab/lab/machine/probe_report.hpp"

#include <fmt/core.h>

#include <array>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::lab {

using paging::Cr0;
using paging::Cr4;
using paging::Efer;

std::string vector_name(std::uint32_t vector) {
  static constexpr std::array<const char*, 22> names{
      "#DE", "#DB", "NMI", "#BP", "#OF",       "#BR", "#UD", "#NM", "#DF", "vector 9", "#TS",
      "#NP", "#SS", "#GP", "#PF", "vector 15", "#MF", "#AC", "#MC", "#XM", "#VE",      "#CP"};
  if (vector < names.size()) return names[vector];
  return fmt::format("vector {}", vector);
}

namespace {
bool has_error_code(std::uint32_t v) {
  return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}
}  // namespace

std::string ProbeReport::outcome_text() const {
  switch (status) {
    case ProbeStatus::Ok:
      return "ok";
    case ProbeStatus::BadCommand:
      return "command not valid in this mode";
    case ProbeStatus::Fault:
      if (has_error_code(vector)) {
        return fmt::format("{}({}) at {:#x}", vector_name(vector),
                           error_code == 0 ? std::string("0") : fmt::format("{:#x}", error_code),
                           fault_rip);
      }
      return fmt::format("{} at {:#x}", vector_name(vector), fault_rip);
  }
  return "unknown status";
}

std::string ProbeReport::mode_name() const {
  if ((cr0 & Cr0::Pe) == 0) return "real mode";
  const auto paging = paging::paging_mode_of(cr0, cr4, efer);
  if ((efer & Efer::Lma) != 0) {
    const char* levels = (cr4 & Cr4::La57) != 0 ? "5-level" : "4-level";
    if (code_bits == 64) return fmt::format("64-bit mode, {} paging", levels);
    return fmt::format("IA-32e compatibility mode, {} paging", levels);
  }
  const char* bits = code_bits == 16 ? "16-bit" : "32-bit";
  switch (paging) {
    case paging::PagingMode::None:
      return fmt::format("{} protected mode, paging off", bits);
    case paging::PagingMode::Bits32:
      return fmt::format("{} protected mode, 32-bit paging", bits);
    case paging::PagingMode::Pae:
      return fmt::format("{} protected mode, PAE paging", bits);
    default:
      return fmt::format("{} protected mode, {} paging", bits, paging::to_string(paging));
  }
}

std::string ProbeReport::registers_text() const {
  return fmt::format("CR0={:#010x} CR3={:#x} CR4={:#x} EFER={:#x} CS={:#x}", cr0, cr3, cr4, efer,
                     cs);
}

nlohmann::json ProbeReport::to_json() const {
  auto hex = [](std::uint64_t v) { return fmt::format("{:#x}", v); };
  nlohmann::json j{{"status", outcome_text()},
                   {"mode", mode_name()},
                   {"code_bits", code_bits},
                   {"cr0", hex(cr0)},
                   {"cr2", hex(cr2)},
                   {"cr3", hex(cr3)},
                   {"cr4", hex(cr4)},
                   {"efer", hex(efer)},
                   {"cs", hex(cs)},
                   {"ss", hex(ss)}};
  if (faulted()) {
    j["fault"] = {{"vector", vector},
                  {"name", vector_name(vector)},
                  {"error_code", hex(error_code)},
                  {"rip", hex(fault_rip)}};
  }
  return j;
}

}  // namespace pagelab::lab

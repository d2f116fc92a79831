#include <fmt/format.h>

#include "engine/engine_impl.hpp"

namespace pagelab::lab {
namespace {

std::string_view control_name(ControlRegister reg) {
  switch (reg) {
    case ControlRegister::Cr0:
      return "cr0";
    case ControlRegister::Cr3:
      return "cr3";
    case ControlRegister::Cr4:
      return "cr4";
    case ControlRegister::Efer:
      return "efer";
    case ControlRegister::Pkru:
      return "pkru";
  }
  return "?";
}

}  // namespace

std::string op_name(const Op& op) {
  return std::visit(
      [](const auto& o) -> std::string {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, OpAccess>) {
          switch (o.type) {
            case paging::AccessType::Read:
              return fmt::format("read{}", o.size);
            case paging::AccessType::Write:
              return fmt::format("write{}", o.size);
            case paging::AccessType::Fetch:
              return "fetch";
          }
          return "access";
        } else if constexpr (std::is_same_v<T, OpWriteEntry>) {
          return "write-entry";
        } else if constexpr (std::is_same_v<T, OpForeignWrite>) {
          return "foreign-write";
        } else if constexpr (std::is_same_v<T, OpWriteControl>) {
          return fmt::format("write-{}", control_name(o.reg));
        } else if constexpr (std::is_same_v<T, OpInvlpg>) {
          return "invlpg";
        } else if constexpr (std::is_same_v<T, OpInvpcid>) {
          return "invpcid";
        } else if constexpr (std::is_same_v<T, OpTogglePge>) {
          return "toggle-pge";
        } else if constexpr (std::is_same_v<T, OpReadControl>) {
          return "read-control";
        } else {
          return "fence";
        }
      },
      op);
}

std::string observed_text(const Op& op, const OpResult& r) {
  switch (r.status) {
    case ProbeStatus::Ok: {
      if (std::holds_alternative<OpReadControl>(op)) {
        return fmt::format("ok CR0={:#x} CR2={:#x} CR3={:#x} CR4={:#x} EFER={:#x}", r.cr0, r.cr2,
                           r.cr3, r.cr4, r.efer);
      }
      const auto* a = std::get_if<OpAccess>(&op);
      if (a != nullptr && a->type == paging::AccessType::Read)
        return fmt::format("ok value={:#x}", r.value);
      return "ok";
    }
    case ProbeStatus::Fault:
      if (r.vector == 14) {
        return fmt::format("#PF(error {:#x}: {}) CR2={:#x} at RIP {:#x}", r.error_code,
                           paging::describe_error_code(static_cast<std::uint32_t>(r.error_code)),
                           r.cr2, r.rip);
      }
      return fmt::format("{}({:#x}) at RIP {:#x}", vector_name(r.vector), r.error_code, r.rip);
    case ProbeStatus::BadCommand:
      return "not run";
  }
  return "?";
}

std::string CheckedResult::summary() const {
  std::string what = op_name(op);
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, OpAccess>) {
          what +=
              fmt::format(" {} {:#x}{}", o.privilege == paging::Privilege::User ? "CPL3" : "CPL0",
                          o.address.value(), o.ac ? " AC=1" : "");
          if (o.type == paging::AccessType::Write) what += fmt::format(" <- {:#x}", o.write_value);
        } else if constexpr (std::is_same_v<T, OpWriteEntry> || std::is_same_v<T, OpForeignWrite>) {
          const auto& addr = [&] {
            if constexpr (std::is_same_v<T, OpWriteEntry>)
              return o.entry;
            else
              return o.address;
          }();
          what += fmt::format(" [{:#x}] <- {:#x}", addr.value(), o.value);
        } else if constexpr (std::is_same_v<T, OpWriteControl>) {
          what += fmt::format(" {:#x}", o.value);
        } else if constexpr (std::is_same_v<T, OpInvlpg>) {
          what += fmt::format(" {:#x}", o.address.value());
        } else if constexpr (std::is_same_v<T, OpInvpcid>) {
          what += fmt::format(" type {} pcid {:#x} {:#x}", o.type, o.pcid, o.address.value());
        }
      },
      op);
  if (skipped) return fmt::format("{} -> skipped: {}", what, *skipped);
  std::string verdict =
      agrees ? "" : (deviation ? fmt::format("  [deviation: {}]", *deviation) : "  [DISAGREES]");
  return fmt::format("{} -> {}{}", what, observed_text(op, observed), verdict);
}

std::string walk_text(const paging::Walk& walk) {
  std::string out;
  for (const auto& s : walk.steps) {
    out += fmt::format("  {:<4} ({:<3}) [{:3}] entry at {:#x} = {:#018x}  {}\n", s.intel_name,
                       s.linux_name, s.index, s.entry_address.value(), s.value, s.meaning);
  }
  out += fmt::format("  => {}{}\n", paging::describe(walk.outcome),
                     walk.fault_reason.empty() ? "" : fmt::format(" ({})", walk.fault_reason));
  return out;
}

}  // namespace pagelab::lab

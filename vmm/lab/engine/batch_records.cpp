#include "engine/batch_records.hpp"

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "pagelab/probe_abi.h"

namespace pagelab::lab::batch {
namespace {

template <class T>
void put(Record& r, unsigned offset, T value) {
  std::memcpy(r.data() + offset, &value, sizeof(T));
}
template <class T>
T get(const Record& r, unsigned offset) {
  T value;
  std::memcpy(&value, r.data() + offset, sizeof(T));
  return value;
}

std::uint8_t access_op(const OpAccess& a) {
  if (a.type == paging::AccessType::Fetch) return BOP_FETCH;
  unsigned slot = 0;
  switch (a.size) {
    case 1:
      slot = 0;
      break;
    case 2:
      slot = 1;
      break;
    case 4:
      slot = 2;
      break;
    case 8:
      slot = 3;
      break;
    default:
      throw std::invalid_argument(
          fmt::format("access size {} is not supported: use 1, 2, 4 or 8 bytes", a.size));
  }
  return static_cast<std::uint8_t>((a.type == paging::AccessType::Read ? BOP_READ1 : BOP_WRITE1) +
                                   slot);
}

std::uint8_t control_op(ControlRegister reg) {
  switch (reg) {
    case ControlRegister::Cr0:
      return BOP_WRITE_CR0;
    case ControlRegister::Cr3:
      return BOP_WRITE_CR3;
    case ControlRegister::Cr4:
      return BOP_WRITE_CR4;
    case ControlRegister::Efer:
      return BOP_WRITE_EFER;
    case ControlRegister::Pkru:
      return BOP_WRITE_PKRU;
  }
  throw std::invalid_argument("unknown control register");
}

constexpr std::uint64_t FourGiB = std::uint64_t{1} << 32;

bool legacy(paging::PagingMode mode) {
  return mode == paging::PagingMode::Bits32 || mode == paging::PagingMode::Pae ||
         mode == paging::PagingMode::None;
}

// The 32-bit probe holds addresses in 32-bit registers: a wider one would be
// truncated silently, so it is refused here with the reason.
void check_32bit(std::uint64_t address, const char* what, paging::PagingMode mode) {
  if (legacy(mode) && address >= FourGiB) {
    throw std::invalid_argument(
        fmt::format("{} {:#x} is at or above 4 GiB: {} paging translates 32-bit linear addresses",
                    what, address, paging::to_string(mode)));
  }
}

}  // namespace

Record encode(const Op& op, paging::PagingMode mode) {
  Record r{};
  put<std::uint32_t>(r, BREC_STATUS, PROBE_STATUS_PENDING);
  std::uint8_t code = 0, flags = 0;
  std::visit(
      [&](const auto& o) {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, OpAccess>) {
          code = access_op(o);
          if (o.privilege == paging::Privilege::User) {
            flags = BOP_USER;  // AC does not matter at CPL3 (CR0.AM alignment checks aside)
          } else if (o.ac) {
            flags = BOP_AC;
          }
          check_32bit(o.address.value(), "address", mode);
          put(r, BREC_ARG0, o.address.value());
          put(r, BREC_ARG1, o.write_value);
        } else if constexpr (std::is_same_v<T, OpWriteEntry>) {
          code = BOP_WRITE_ENTRY;
          check_32bit(o.entry.value(), "entry address", mode);
          if (mode == paging::PagingMode::Bits32) {
            // 32-bit paging entries are 4 bytes: an 8-byte store would hit the next one.
            if (o.value >= FourGiB) {
              throw std::invalid_argument(fmt::format(
                  "entry value {:#x} is wider than a 32-bit paging entry (4 bytes)", o.value));
            }
            put(r, BREC_TYPE, static_cast<std::uint8_t>(BREC_ENTRY_4));
          }
          put(r, BREC_ARG0, o.entry.value());
          put(r, BREC_ARG1, o.value);
        } else if constexpr (std::is_same_v<T, OpForeignWrite>) {
          // The host writes at this sync point; the record names what, for a reader.
          code = BOP_SYNC;
          put(r, BREC_ARG0, o.address.value());
          put(r, BREC_ARG1, o.value);
        } else if constexpr (std::is_same_v<T, OpWriteControl>) {
          code = control_op(o.reg);
          put(r, BREC_ARG0, o.value);
        } else if constexpr (std::is_same_v<T, OpInvlpg>) {
          code = BOP_INVLPG;
          check_32bit(o.address.value(), "INVLPG address", mode);
          put(r, BREC_ARG0, o.address.value());
        } else if constexpr (std::is_same_v<T, OpInvpcid>) {
          code = BOP_INVPCID;
          put(r, BREC_TYPE, static_cast<std::uint8_t>(o.type));
          put(r, BREC_ARG0, o.pcid);
          put(r, BREC_ARG1, o.address.value());
        } else if constexpr (std::is_same_v<T, OpTogglePge>) {
          code = BOP_TOGGLE_PGE;
        } else if constexpr (std::is_same_v<T, OpReadControl>) {
          code = BOP_READ_CONTROL;
        } else {
          code = BOP_FENCE;
        }
      },
      op);
  put(r, BREC_OP, static_cast<std::uint8_t>(code | flags));
  return r;
}

OpResult decode(const Record& r, const Op& op) {
  OpResult out;
  switch (get<std::uint32_t>(r, BREC_STATUS)) {
    case PROBE_STATUS_PENDING:  // of a finished batch: the probe writes only failures
    case PROBE_STATUS_OK:
      out.status = ProbeStatus::Ok;
      break;
    case PROBE_STATUS_FAULT:
      out.status = ProbeStatus::Fault;
      break;
    default:
      out.status = ProbeStatus::BadCommand;
      break;
  }
  if (std::holds_alternative<OpReadControl>(op)) {
    out.cr0 = get<std::uint64_t>(r, BREC_ARG0);
    out.cr3 = get<std::uint64_t>(r, BREC_ARG1);
    out.cr4 = get<std::uint64_t>(r, BREC_RIP);
    out.cr2 = get<std::uint64_t>(r, BREC_CR2);
    out.efer = get<std::uint64_t>(r, BREC_VALUE);
    return out;
  }
  out.vector = get<std::uint32_t>(r, BREC_VECTOR);
  out.error_code = get<std::uint64_t>(r, BREC_ERROR);
  out.cr2 = get<std::uint64_t>(r, BREC_CR2);
  out.rip = get<std::uint64_t>(r, BREC_RIP);
  out.value = get<std::uint64_t>(r, BREC_VALUE);
  return out;
}

}  // namespace pagelab::lab::batch

#include "pagelab/paging/segment_descriptor.hpp"

#include <fmt/core.h>

#include <stdexcept>

namespace pagelab::paging {

namespace {

constexpr std::uint64_t field(std::uint64_t raw, std::uint64_t mask, unsigned shift) {
  return (raw & mask) >> shift;
}

// Gate types and which of them exist in each mode (SDM tables 3-2; in IA-32e mode the
// 16-bit types, task gates and type 1/3 TSSs are reserved).
SystemKind kind_of(unsigned type, bool long_mode) {
  switch (type) {
    case SystemTypeValue::Ldt:
      return SystemKind::Ldt;
    case SystemTypeValue::TssAvailable:
      return SystemKind::TssAvailable;
    case SystemTypeValue::TssBusy:
      return SystemKind::TssBusy;
    case SystemTypeValue::CallGate:
      return SystemKind::CallGate;
    case SystemTypeValue::InterruptGate:
      return SystemKind::InterruptGate;
    case SystemTypeValue::TrapGate:
      return SystemKind::TrapGate;
    default:
      break;
  }
  if (long_mode) return SystemKind::Reserved;
  switch (type) {
    case SystemTypeValue::Tss16Available:
      return SystemKind::TssAvailable;
    case SystemTypeValue::Tss16Busy:
      return SystemKind::TssBusy;
    case SystemTypeValue::CallGate16:
      return SystemKind::CallGate;
    case SystemTypeValue::TaskGate:
      return SystemKind::TaskGate;
    case SystemTypeValue::InterruptGate16:
      return SystemKind::InterruptGate;
    case SystemTypeValue::TrapGate16:
      return SystemKind::TrapGate;
    default:
      return SystemKind::Reserved;
  }
}

bool is_16bit_system_type(unsigned type) {
  return type == SystemTypeValue::Tss16Available || type == SystemTypeValue::Tss16Busy ||
         type == SystemTypeValue::CallGate16 || type == SystemTypeValue::InterruptGate16 ||
         type == SystemTypeValue::TrapGate16;
}

}  // namespace

Selector Selector::make(unsigned index, bool ti, unsigned rpl) {
  if (index > SelectorBits::MaxIndex) {
    throw std::invalid_argument(
        fmt::format("selector index {} exceeds 13 bits (max {})", index, SelectorBits::MaxIndex));
  }
  if (rpl > SelectorBits::Rpl) {
    throw std::invalid_argument(fmt::format("RPL {} exceeds 2 bits (max 3)", rpl));
  }
  return Selector{static_cast<std::uint16_t>((index << SelectorBits::IndexShift) |
                                             (ti ? SelectorBits::Ti : 0u) | rpl)};
}

std::uint64_t Descriptor::effective_limit() const {
  if (!g) return limit;
  return (std::uint64_t{limit} << DescriptorBits::GranularityShift) |
         (bit(DescriptorBits::GranularityShift) - 1);
}

bool Descriptor::readable() const {
  if (is_data()) return true;
  return is_code() && (type & SegmentType::Readable) != 0;
}

bool Descriptor::writable() const {
  return is_data() && (type & SegmentType::Writable) != 0;
}

SystemKind Descriptor::system_kind() const {
  if (s) return SystemKind::NotSystem;
  return kind_of(type, long_mode);
}

bool Descriptor::is_gate() const {
  switch (system_kind()) {
    case SystemKind::CallGate:
    case SystemKind::TaskGate:
    case SystemKind::InterruptGate:
    case SystemKind::TrapGate:
      return true;
    default:
      return false;
  }
}

bool Descriptor::is_16_bytes() const {
  if (!long_mode || s) return false;
  const SystemKind k = system_kind();
  return k != SystemKind::Reserved && k != SystemKind::TaskGate;
}

std::string Descriptor::type_name() const {
  if (is_code()) {
    std::string name = "code, execute";
    name += (type & SegmentType::Readable) ? "/read" : "-only";
    if (type & SegmentType::Conforming) name += ", conforming";
    if (type & SegmentType::Accessed) name += ", accessed";
    return name;
  }
  if (is_data()) {
    std::string name = "data, read";
    name += (type & SegmentType::Writable) ? "/write" : "-only";
    if (type & SegmentType::ExpandDown) name += ", expand-down";
    if (type & SegmentType::Accessed) name += ", accessed";
    return name;
  }
  const std::string width =
      long_mode ? "64-bit " : (is_16bit_system_type(type) ? "16-bit " : "32-bit ");
  switch (system_kind()) {
    case SystemKind::Ldt:
      return "LDT";
    case SystemKind::TssAvailable:
      return width + "TSS (available)";
    case SystemKind::TssBusy:
      return width + "TSS (busy)";
    case SystemKind::CallGate:
      return width + "call gate";
    case SystemKind::TaskGate:
      return "task gate";
    case SystemKind::InterruptGate:
      return width + "interrupt gate";
    case SystemKind::TrapGate:
      return width + "trap gate";
    default:
      return fmt::format("reserved system type {:#x}", type);
  }
}

Descriptor decode_descriptor(std::uint64_t raw, bool long_mode) {
  Descriptor d;
  d.long_mode = long_mode;
  d.type = static_cast<unsigned>(field(raw, DescriptorBits::Type, DescriptorBits::TypeShift));
  d.s = (raw & DescriptorBits::S) != 0;
  d.dpl = static_cast<unsigned>(field(raw, DescriptorBits::Dpl, DescriptorBits::DplShift));
  d.present = (raw & DescriptorBits::P) != 0;
  d.avl = (raw & DescriptorBits::Avl) != 0;
  d.l = (raw & DescriptorBits::L) != 0;
  d.db = (raw & DescriptorBits::Db) != 0;
  d.g = (raw & DescriptorBits::G) != 0;
  d.limit = static_cast<std::uint32_t>(
      (raw & DescriptorBits::LimitLow) |
      (field(raw, DescriptorBits::LimitHigh, DescriptorBits::LimitHighShift)
       << DescriptorBits::LimitLowWidth));
  d.base = field(raw, DescriptorBits::BaseLow, DescriptorBits::BaseLowShift) |
           (field(raw, DescriptorBits::BaseHigh, DescriptorBits::BaseHighShift)
            << DescriptorBits::BaseLowWidth);
  if (d.is_gate()) {
    d.gate_selector = static_cast<std::uint16_t>(
        field(raw, DescriptorBits::GateSelector, DescriptorBits::GateSelectorShift));
    d.gate_offset = (raw & DescriptorBits::GateOffsetLow) |
                    (field(raw, DescriptorBits::GateOffsetHigh, DescriptorBits::GateOffsetHighShift)
                     << DescriptorBits::GateOffsetLowWidth);
    if (long_mode) {
      d.gate_ist = static_cast<unsigned>(
          field(raw, DescriptorBits::GateIst, DescriptorBits::GateParamCountShift));
    } else {
      d.gate_param_count = static_cast<unsigned>(
          field(raw, DescriptorBits::GateParamCount, DescriptorBits::GateParamCountShift));
    }
  }
  return d;
}

Descriptor decode_descriptor16(std::uint64_t low, std::uint64_t high) {
  Descriptor d = decode_descriptor(low, true);
  if (!d.is_16_bytes()) {
    throw std::invalid_argument(fmt::format(
        "descriptor {:#018x} is a {}, not a 16-byte IA-32e system descriptor", low, d.type_name()));
  }
  if (high & DescriptorHighBits::MustBeZeroType) {
    throw std::invalid_argument(
        fmt::format("high quadword {:#018x}: bits 44:40 (the upper type field, bits 12:8 of the "
                    "last doubleword) must be 0",
                    high));
  }
  const std::uint64_t upper = (high & DescriptorHighBits::Upper32)
                              << DescriptorHighBits::Upper32Shift;
  if (d.is_gate()) {
    d.gate_offset |= upper;
  } else {
    d.base |= upper;
  }
  return d;
}

std::uint64_t encode_descriptor(const Descriptor& d) {
  if (d.limit > DescriptorBits::MaxLimit) {
    throw std::invalid_argument(fmt::format("descriptor limit {:#x} exceeds 20 bits", d.limit));
  }
  if (d.dpl > 3) throw std::invalid_argument(fmt::format("DPL {} exceeds 2 bits", d.dpl));
  if (d.type > SegmentType::Mask) {
    throw std::invalid_argument(fmt::format("descriptor type {:#x} exceeds 4 bits", d.type));
  }
  std::uint64_t raw = (std::uint64_t{d.type} << DescriptorBits::TypeShift) |
                      (std::uint64_t{d.dpl} << DescriptorBits::DplShift);
  if (d.s) raw |= DescriptorBits::S;
  if (d.present) raw |= DescriptorBits::P;
  if (d.is_gate()) {
    const std::uint64_t offset32 = d.gate_offset & DescriptorBits::Base32;
    if (!d.long_mode && offset32 != d.gate_offset) {
      throw std::invalid_argument(
          fmt::format("gate offset {:#x} does not fit a legacy gate (32 bits)", d.gate_offset));
    }
    raw |=
        (offset32 & DescriptorBits::GateOffsetLow) |
        ((offset32 >> DescriptorBits::GateOffsetLowWidth) << DescriptorBits::GateOffsetHighShift) |
        (std::uint64_t{d.gate_selector} << DescriptorBits::GateSelectorShift);
    if (d.long_mode) {
      raw |= (std::uint64_t{d.gate_ist} << DescriptorBits::GateParamCountShift) &
             DescriptorBits::GateIst;
    } else {
      raw |= (std::uint64_t{d.gate_param_count} << DescriptorBits::GateParamCountShift) &
             DescriptorBits::GateParamCount;
    }
    return raw;
  }
  const std::uint64_t base32 = d.base & DescriptorBits::Base32;
  if (base32 != d.base && !d.is_16_bytes()) {
    throw std::invalid_argument(fmt::format(
        "base {:#x} does not fit an 8-byte descriptor (32 bits); FS/GS bases above 4 GiB "
        "come from MSRs",
        d.base));
  }
  raw |=
      (std::uint64_t{d.limit} & DescriptorBits::LimitLow) |
      ((std::uint64_t{d.limit} >> DescriptorBits::LimitLowWidth) << DescriptorBits::LimitHighShift);
  raw |= ((base32 & (bit(DescriptorBits::BaseLowWidth) - 1)) << DescriptorBits::BaseLowShift) |
         ((base32 >> DescriptorBits::BaseLowWidth) << DescriptorBits::BaseHighShift);
  if (d.avl) raw |= DescriptorBits::Avl;
  if (d.l) raw |= DescriptorBits::L;
  if (d.db) raw |= DescriptorBits::Db;
  if (d.g) raw |= DescriptorBits::G;
  return raw;
}

std::array<std::uint64_t, 2> encode_descriptor16(const Descriptor& d) {
  if (!d.is_16_bytes()) {
    throw std::invalid_argument(
        fmt::format("a {} is not a 16-byte IA-32e system descriptor", d.type_name()));
  }
  const std::uint64_t upper = d.is_gate() ? d.gate_offset : d.base;
  Descriptor low = d;
  if (d.is_gate()) {
    low.gate_offset &= DescriptorBits::Base32;
  } else {
    low.base &= DescriptorBits::Base32;
  }
  return {encode_descriptor(low),
          (upper >> DescriptorHighBits::Upper32Shift) & DescriptorHighBits::Upper32};
}

Descriptor flat_code_descriptor(unsigned dpl, bool l, bool d) {
  Descriptor desc;
  desc.limit = DescriptorBits::MaxLimit;
  desc.g = true;
  desc.s = true;
  desc.type = SegmentType::Code | SegmentType::Readable;
  desc.dpl = dpl;
  desc.present = true;
  desc.l = l;
  desc.db = d;
  return desc;
}

Descriptor flat_data_descriptor(unsigned dpl) {
  Descriptor desc;
  desc.limit = DescriptorBits::MaxLimit;
  desc.g = true;
  desc.s = true;
  desc.type = SegmentType::Writable;
  desc.dpl = dpl;
  desc.present = true;
  desc.db = true;
  return desc;
}

}  // namespace pagelab::paging

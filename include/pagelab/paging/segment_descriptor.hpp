#pragma once
// Segment selectors and GDT/LDT descriptors (Intel SDM vol. 3 §3.4.2, §3.4.5, §3.5,
// figures 3-6, 3-8 and 7-4; AMD APM vol. 2 §4.5, §4.7, §4.8). Decoding and encoding
// share one set of named fields so the probe's GDT can be generated from the model.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pagelab/paging/bits.hpp"

namespace pagelab::paging {

// Fields of a segment selector (SDM figure 3-6).
struct SelectorBits {
  static constexpr std::uint16_t Rpl = static_cast<std::uint16_t>(bits(0, 1));
  static constexpr std::uint16_t Ti = static_cast<std::uint16_t>(bit(2));  // 1: LDT
  static constexpr unsigned IndexShift = 3;
  static constexpr unsigned MaxIndex = 0x1fff;
};

struct Selector {
  std::uint16_t raw = 0;

  [[nodiscard]] unsigned index() const { return raw >> SelectorBits::IndexShift; }
  [[nodiscard]] bool ti() const { return (raw & SelectorBits::Ti) != 0; }
  [[nodiscard]] unsigned rpl() const { return raw & SelectorBits::Rpl; }
  // Index 0 in the GDT, whatever the RPL: the null selector (SDM §3.4.2).
  [[nodiscard]] bool is_null() const { return index() == 0 && !ti(); }
  // What an exception pushes for #GP(selector)/#NP/#SS/#TS: index and TI, with the
  // EXT and IDT bits (the RPL positions) clear (SDM §6.13).
  [[nodiscard]] std::uint32_t error_code() const { return raw & ~SelectorBits::Rpl & 0xffffu; }

  static Selector make(unsigned index, bool ti, unsigned rpl);  // throws std::invalid_argument
};

// Fields of the low quadword of a descriptor (SDM figure 3-8).
struct DescriptorBits {
  static constexpr std::uint64_t LimitLow = bits(0, 15);
  static constexpr std::uint64_t BaseLow = bits(16, 39);  // base 23:0
  static constexpr unsigned BaseLowShift = 16;
  static constexpr std::uint64_t Type = bits(40, 43);
  static constexpr unsigned TypeShift = 40;
  static constexpr std::uint64_t S = bit(44);  // 1: code/data, 0: system
  static constexpr std::uint64_t Dpl = bits(45, 46);
  static constexpr unsigned DplShift = 45;
  static constexpr std::uint64_t P = bit(47);
  static constexpr std::uint64_t LimitHigh = bits(48, 51);  // limit 19:16
  static constexpr unsigned LimitHighShift = 48;
  static constexpr std::uint64_t Avl = bit(52);
  static constexpr std::uint64_t L = bit(53);              // 64-bit code segment (IA-32e mode)
  static constexpr std::uint64_t Db = bit(54);             // default operation size / big
  static constexpr std::uint64_t G = bit(55);              // limit in 4 KiB units
  static constexpr std::uint64_t BaseHigh = bits(56, 63);  // base 31:24
  static constexpr unsigned BaseHighShift = 56;
  static constexpr unsigned LimitBits = 20;
  // Where each split field's high part starts in the assembled value.
  static constexpr unsigned LimitLowWidth = 16;         // limit 15:0 | limit 19:16
  static constexpr unsigned BaseLowWidth = 24;          // base 23:0 | base 31:24
  static constexpr unsigned GateOffsetLowWidth = 16;    // offset 15:0 | offset 31:16
  static constexpr std::uint64_t Base32 = bits(0, 31);  // base/offset in 8 bytes
  static constexpr std::uint32_t MaxLimit = 0xfffff;
  static constexpr unsigned GranularityShift = 12;  // G=1: limit * 4096 + 4095
  // Gates (SDM figures 5-8, 6-2): target offset and selector in place of base/limit.
  static constexpr std::uint64_t GateOffsetLow = bits(0, 15);
  static constexpr std::uint64_t GateSelector = bits(16, 31);
  static constexpr unsigned GateSelectorShift = 16;
  static constexpr std::uint64_t GateParamCount = bits(32, 36);  // call gates (legacy)
  static constexpr unsigned GateParamCountShift = 32;
  static constexpr std::uint64_t GateIst = bits(32, 34);         // 64-bit interrupt/trap gates
  static constexpr std::uint64_t GateOffsetHigh = bits(48, 63);  // offset 31:16
  static constexpr unsigned GateOffsetHighShift = 48;
};

// Fields of the high quadword of a 16-byte system descriptor in IA-32e mode (SDM
// figures 7-4, 5-9, 6-8): base or offset 63:32, and a type field that must be 0.
struct DescriptorHighBits {
  static constexpr std::uint64_t Upper32 = bits(0, 31);
  static constexpr unsigned Upper32Shift = 32;
  static constexpr std::uint64_t MustBeZeroType = bits(40, 44);  // bits 12:8 of dword 3
};

// The 4-bit type field of a code or data descriptor (SDM table 3-1).
struct SegmentType {
  static constexpr unsigned Accessed = 1u << 0;
  static constexpr unsigned Writable = 1u << 1;    // data
  static constexpr unsigned Readable = 1u << 1;    // code
  static constexpr unsigned ExpandDown = 1u << 2;  // data
  static constexpr unsigned Conforming = 1u << 2;  // code
  static constexpr unsigned Code = 1u << 3;
  static constexpr unsigned Mask = 0xf;
};

// System-descriptor types (SDM table 3-2). Values are the type field.
struct SystemTypeValue {
  static constexpr unsigned Tss16Available = 0x1;
  static constexpr unsigned Ldt = 0x2;
  static constexpr unsigned Tss16Busy = 0x3;
  static constexpr unsigned CallGate16 = 0x4;
  static constexpr unsigned TaskGate = 0x5;
  static constexpr unsigned InterruptGate16 = 0x6;
  static constexpr unsigned TrapGate16 = 0x7;
  static constexpr unsigned TssAvailable = 0x9;  // 32-bit, or 64-bit in IA-32e mode
  static constexpr unsigned TssBusy = 0xb;
  static constexpr unsigned CallGate = 0xc;
  static constexpr unsigned InterruptGate = 0xe;
  static constexpr unsigned TrapGate = 0xf;
};

enum class SystemKind {
  NotSystem,  // a code or data descriptor
  Reserved,
  Ldt,
  TssAvailable,
  TssBusy,
  CallGate,
  TaskGate,
  InterruptGate,
  TrapGate,
};

struct Descriptor {
  // Fields as stored; `limit` is the raw 20-bit field.
  std::uint64_t base = 0;  // 32 bits, or 64 for 16-byte system descriptors / FS/GS bases
  std::uint32_t limit = 0;
  unsigned type = 0;
  bool s = false;  // code/data (true) or system (false)
  unsigned dpl = 0;
  bool present = false;
  bool avl = false;
  bool l = false;
  bool db = false;
  bool g = false;
  // Gates only.
  std::uint16_t gate_selector = 0;
  std::uint64_t gate_offset = 0;
  unsigned gate_param_count = 0;  // legacy call gates
  unsigned gate_ist = 0;          // 64-bit interrupt/trap gates
  // How the system type is read: legacy (16/32-bit types) or IA-32e (64-bit types).
  bool long_mode = false;

  // Limit in bytes, taking G into account.
  [[nodiscard]] std::uint64_t effective_limit() const;
  [[nodiscard]] bool is_code() const { return s && (type & SegmentType::Code) != 0; }
  [[nodiscard]] bool is_data() const { return s && (type & SegmentType::Code) == 0; }
  [[nodiscard]] bool is_system() const { return !s; }
  [[nodiscard]] bool readable() const;  // data always; code with R
  [[nodiscard]] bool writable() const;  // data with W; code never
  [[nodiscard]] bool conforming() const { return is_code() && (type & SegmentType::Conforming); }
  [[nodiscard]] bool expand_down() const { return is_data() && (type & SegmentType::ExpandDown); }
  [[nodiscard]] bool accessed() const { return s && (type & SegmentType::Accessed); }
  [[nodiscard]] SystemKind system_kind() const;
  [[nodiscard]] bool is_gate() const;
  // LDT and TSS descriptors in IA-32e mode, and 64-bit call/interrupt/trap gates, are
  // 16 bytes (SDM §7.2.3, §5.8.3.1, §6.14.1).
  [[nodiscard]] bool is_16_bytes() const;
  // "code, execute/read, accessed", "data, read/write, expand-down", "64-bit TSS (busy)" ...
  [[nodiscard]] std::string type_name() const;
};

// Decodes the low (or only) quadword. `long_mode` selects IA-32e system types; the
// upper 32 bits of a 16-byte descriptor come from decode_descriptor16(low, high).
Descriptor decode_descriptor(std::uint64_t raw, bool long_mode = false);
// Two quadwords go to decode_descriptor16; this stops one silently becoming `long_mode`.
Descriptor decode_descriptor(std::uint64_t low, std::uint64_t high) = delete;
// A 16-byte IA-32e system descriptor. Throws std::invalid_argument if the high
// quadword's type field is not zero (SDM figure 7-4).
Descriptor decode_descriptor16(std::uint64_t low, std::uint64_t high);

// The low quadword of `d`. Throws std::invalid_argument for a field that does not fit
// (limit > 20 bits, DPL > 3, type > 15, a code/data base above 4 GiB).
std::uint64_t encode_descriptor(const Descriptor& d);
// Both quadwords of a 16-byte IA-32e system descriptor (base or offset 63:32 in high).
std::array<std::uint64_t, 2> encode_descriptor16(const Descriptor& d);

// Flat 4 GiB descriptors with G=1, limit 0xfffff, present, accessed clear.
Descriptor flat_code_descriptor(unsigned dpl, bool l, bool d);
Descriptor flat_data_descriptor(unsigned dpl);

}  // namespace pagelab::paging

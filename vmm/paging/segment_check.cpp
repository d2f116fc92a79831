#include "pagelab/paging/segment_check.hpp"

#include <fmt/core.h>

#include <stdexcept>
#include <utility>

namespace pagelab::paging {

namespace {

// Outside 64-bit mode offsets and linear addresses are at most 32 bits (SDM §3.3.6).
constexpr std::uint64_t kMax32 = bits(0, 31);
// The upper bound of an expand-down segment is set by B (SDM §3.4.5.1).
constexpr std::uint64_t kExpandDownTop16 = bits(0, 15);

SegmentFault fault(unsigned vector, std::uint32_t error_code, std::string reason) {
  return SegmentFault{vector, error_code, std::move(reason)};
}

// A limit or canonical violation through SS raises #SS instead of #GP (SDM §6.15,
// interrupt 12).
unsigned stack_or_gp(SegmentRegisterName name) {
  return name == SegmentRegisterName::Ss ? ExceptionVector::Ss : ExceptionVector::Gp;
}

bool canonical(std::uint64_t address, unsigned linear_bits) {
  const std::uint64_t upper = bits(linear_bits - 1, 63);
  const std::uint64_t top = address & upper;
  return top == 0 || top == upper;
}

}  // namespace

std::string_view to_string(SegmentRegisterName name) {
  switch (name) {
    case SegmentRegisterName::Es:
      return "ES";
    case SegmentRegisterName::Cs:
      return "CS";
    case SegmentRegisterName::Ss:
      return "SS";
    case SegmentRegisterName::Ds:
      return "DS";
    case SegmentRegisterName::Fs:
      return "FS";
    case SegmentRegisterName::Gs:
      return "GS";
  }
  return "?";
}

std::variant<Linear, SegmentFault> logical_to_linear(const SegmentRegister& seg,
                                                     std::uint64_t offset, unsigned size,
                                                     AccessKind kind, unsigned cpl, bool long_mode,
                                                     unsigned linear_bits) {
  (void)cpl;  // privilege is enforced at selector load, not per access (SDM §5.5)
  if (size == 0) throw std::invalid_argument("logical_to_linear: access size must be at least 1");
  if (linear_bits < 32 || linear_bits > 64) {
    throw std::invalid_argument(
        fmt::format("logical_to_linear: linear width {} is not 32..64", linear_bits));
  }
  const auto name = seg.name;
  const auto& d = seg.descriptor;

  if (long_mode) {
    const bool based = name == SegmentRegisterName::Fs || name == SegmentRegisterName::Gs;
    const std::uint64_t first = (based ? d.base : 0) + offset;
    const std::uint64_t last = first + (size - 1);
    if (!canonical(first, linear_bits) || !canonical(last, linear_bits)) {
      return fault(
          stack_or_gp(name), 0,
          fmt::format("SDM 3.3.7.1: {:#x} (+{} bytes) is not canonical for {}-bit linear "
                      "addresses; 64-bit mode raises {}(0)",
                      first, size, linear_bits, name == SegmentRegisterName::Ss ? "#SS" : "#GP"));
    }
    return Linear{first};
  }

  // A null selector loaded into DS/ES/FS/GS leaves the register unusable; the cached
  // descriptor of the null entry is not present (SDM §3.4.2, §5.4.1).
  if (!d.present) {
    return fault(ExceptionVector::Gp, 0,
                 fmt::format("SDM 3.4.2: {} holds a null selector (unusable); a memory "
                             "reference through it raises #GP(0)",
                             to_string(name)));
  }
  switch (kind) {
    case AccessKind::Execute:
      if (!d.is_code()) {
        return fault(ExceptionVector::Gp, 0,
                     fmt::format("SDM 5.4.1: instruction fetch through {} requires a code "
                                 "segment, found {}",
                                 to_string(name), d.type_name()));
      }
      break;
    case AccessKind::Write:
      if (!d.writable()) {
        return fault(ExceptionVector::Gp, 0,
                     fmt::format("SDM 5.4.1: write through {} to a {} (only writable data "
                                 "segments can be written) raises #GP(0)",
                                 to_string(name), d.type_name()));
      }
      break;
    case AccessKind::Read:
      if (!d.readable()) {
        return fault(ExceptionVector::Gp, 0,
                     fmt::format("SDM 5.4.1: read through {} from a {} raises #GP(0)",
                                 to_string(name), d.type_name()));
      }
      break;
  }

  const std::uint64_t limit = d.effective_limit();
  const std::uint64_t last = offset + (size - 1);
  const unsigned vector = stack_or_gp(name);
  const std::string_view mnemonic = vector == ExceptionVector::Ss ? "#SS" : "#GP";
  if (d.expand_down()) {
    const std::uint64_t top = d.db ? kMax32 : kExpandDownTop16;
    if (offset <= limit || last > top || last < offset) {
      return fault(vector, 0,
                   fmt::format("SDM 5.3: expand-down {} allows offsets {:#x}..{:#x}; access "
                               "{:#x}..{:#x} raises {}(0)",
                               to_string(name), limit + 1, top, offset, last, mnemonic));
    }
  } else if (last > limit || last < offset) {
    return fault(vector, 0,
                 fmt::format("SDM 5.3: {} limit is {:#x}; access {:#x}..{:#x} raises {}(0)",
                             to_string(name), limit, offset, last, mnemonic));
  }
  return Linear{(d.base + offset) & kMax32};
}

std::optional<SegmentFault> check_segment_load(Selector selector, const Descriptor& desc,
                                               SegmentRegisterName reg, unsigned cpl, bool ia32e,
                                               bool sixty_four_bit) {
  const unsigned rpl = selector.rpl();
  const std::uint32_t sel = selector.error_code();

  if (reg == SegmentRegisterName::Ss) {
    if (selector.is_null()) {
      if (sixty_four_bit && cpl < 3 && rpl == cpl) return std::nullopt;
      return fault(ExceptionVector::Gp, 0,
                   sixty_four_bit ? "SDM MOV: in 64-bit mode a null SS is allowed only at CPL<3 "
                                    "with RPL=CPL; otherwise #GP(0)"
                                  : "SDM MOV: loading SS with a null selector raises #GP(0)");
    }
    if (rpl != cpl) {
      return fault(
          ExceptionVector::Gp, sel,
          fmt::format("SDM MOV: SS selector RPL {} must equal CPL {}; #GP(selector)", rpl, cpl));
    }
    if (!desc.writable()) {
      return fault(ExceptionVector::Gp, sel,
                   fmt::format("SDM MOV: SS must be a writable data segment, found {}; "
                               "#GP(selector)",
                               desc.type_name()));
    }
    if (desc.dpl != cpl) {
      return fault(ExceptionVector::Gp, sel,
                   fmt::format("SDM MOV: SS descriptor DPL {} must equal CPL {}; #GP(selector)",
                               desc.dpl, cpl));
    }
    if (!desc.present) {
      return fault(ExceptionVector::Ss, sel,
                   "SDM MOV: SS segment not present raises #SS(selector)");
    }
    return std::nullopt;
  }

  if (reg != SegmentRegisterName::Cs) {
    if (selector.is_null()) return std::nullopt;  // loads an unusable register
    if (!desc.is_data() && !(desc.is_code() && desc.readable())) {
      return fault(ExceptionVector::Gp, sel,
                   fmt::format("SDM MOV: {} must be a data or readable code segment, found {}; "
                               "#GP(selector)",
                               to_string(reg), desc.type_name()));
    }
    if ((desc.is_data() || !desc.conforming()) && (rpl > desc.dpl || cpl > desc.dpl)) {
      return fault(ExceptionVector::Gp, sel,
                   fmt::format("SDM MOV: data or non-conforming code needs RPL {} <= DPL {} and "
                               "CPL {} <= DPL; #GP(selector)",
                               rpl, desc.dpl, cpl));
    }
    if (!desc.present) {
      return fault(
          ExceptionVector::Np, sel,
          fmt::format("SDM MOV: {} segment not present raises #NP(selector)", to_string(reg)));
    }
    return std::nullopt;
  }

  // CS: a direct far JMP/CALL to a code segment (SDM vol. 2 JMP operation).
  if (selector.is_null()) {
    return fault(ExceptionVector::Gp, 0, "SDM JMP: a null code-segment selector raises #GP(0)");
  }
  if (!desc.is_code()) {
    const SystemKind kind = desc.system_kind();
    const bool transfer_target =
        ia32e ? kind == SystemKind::CallGate
              : (kind == SystemKind::CallGate || kind == SystemKind::TaskGate ||
                 kind == SystemKind::TssAvailable || kind == SystemKind::TssBusy);
    if (transfer_target) {
      throw std::invalid_argument(fmt::format(
          "check_segment_load: far transfers through a {} are not modelled", desc.type_name()));
    }
    return fault(ExceptionVector::Gp, sel,
                 fmt::format("SDM JMP: far jump target must be a code segment{}, found {}; "
                             "#GP(selector)",
                             ia32e ? " or 64-bit call gate" : ", call gate, task gate or TSS",
                             desc.type_name()));
  }
  if (ia32e && desc.l && desc.db) {
    return fault(ExceptionVector::Gp, sel,
                 "SDM JMP / 3.4.5: in IA-32e mode a code segment with L=1 and D=1 is invalid; "
                 "#GP(selector)");
  }
  if (desc.conforming()) {
    if (desc.dpl > cpl) {
      return fault(ExceptionVector::Gp, sel,
                   fmt::format("SDM JMP: conforming code needs DPL {} <= CPL {}; #GP(selector)",
                               desc.dpl, cpl));
    }
  } else if (rpl > cpl || desc.dpl != cpl) {
    return fault(ExceptionVector::Gp, sel,
                 fmt::format("SDM JMP: non-conforming code needs RPL {} <= CPL {} and DPL {} = "
                             "CPL; #GP(selector)",
                             rpl, cpl, desc.dpl));
  }
  if (!desc.present) {
    return fault(ExceptionVector::Np, sel,
                 "SDM JMP: code segment not present raises #NP(selector)");
  }
  return std::nullopt;
}

}  // namespace pagelab::paging

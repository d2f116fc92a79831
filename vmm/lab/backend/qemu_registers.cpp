#include "backend/qemu_registers.hpp"

#include <charconv>
#include <map>
#include <regex>
#include <string>

#include "pagelab/paging/bits.hpp"

namespace pagelab::lab {
namespace {

// QEMU prints a segment's attributes as the descriptor's high dword (SDM vol. 3
// §3.4.5): type 11:8, S 12, DPL 14:13, P 15, AVL 20, L 21, D/B 22, G 23.
struct SegmentFlags {
  static constexpr unsigned TypeShift = 8;
  static constexpr std::uint64_t TypeMask = paging::bits(0, 3);
  static constexpr unsigned S = 12;
  static constexpr unsigned DplShift = 13;
  static constexpr std::uint64_t DplMask = paging::bits(0, 1);
  static constexpr unsigned P = 15;
  static constexpr unsigned Avl = 20;
  static constexpr unsigned L = 21;
  static constexpr unsigned Db = 22;
  static constexpr unsigned G = 23;
};

std::uint64_t hex(const std::string& s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v, 16);
  return v;
}

kvm_segment segment(std::uint64_t sel, std::uint64_t base, std::uint64_t limit,
                    std::uint64_t flags) {
  kvm_segment s{};
  s.selector = static_cast<std::uint16_t>(sel);
  s.base = base;
  s.limit = static_cast<std::uint32_t>(limit);
  s.type = static_cast<std::uint8_t>((flags >> SegmentFlags::TypeShift) & SegmentFlags::TypeMask);
  s.s = (flags >> SegmentFlags::S) & 1;
  s.dpl = static_cast<std::uint8_t>((flags >> SegmentFlags::DplShift) & SegmentFlags::DplMask);
  s.present = (flags >> SegmentFlags::P) & 1;
  s.avl = (flags >> SegmentFlags::Avl) & 1;
  s.l = (flags >> SegmentFlags::L) & 1;
  s.db = (flags >> SegmentFlags::Db) & 1;
  s.g = (flags >> SegmentFlags::G) & 1;
  return s;
}

}  // namespace

MachineRegisters parse_qemu_registers(std::string_view text) {
  const std::string t(text);
  std::map<std::string, std::uint64_t> v;
  static const std::regex kPair(R"(\b([A-Z][A-Z0-9]*)=([0-9a-fA-F]+)\b)");
  for (auto it = std::sregex_iterator(t.begin(), t.end(), kPair); it != std::sregex_iterator();
       ++it) {
    v.emplace((*it)[1].str(), hex((*it)[2].str()));
  }
  auto get = [&](const char* wide, const char* narrow) -> std::uint64_t {
    if (auto i = v.find(wide); i != v.end()) return i->second;
    if (auto i = v.find(narrow); i != v.end()) return i->second;
    return 0;
  };
  MachineRegisters m;
  auto& r = m.regs;
  r.rax = get("RAX", "EAX");
  r.rbx = get("RBX", "EBX");
  r.rcx = get("RCX", "ECX");
  r.rdx = get("RDX", "EDX");
  r.rsi = get("RSI", "ESI");
  r.rdi = get("RDI", "EDI");
  r.rbp = get("RBP", "EBP");
  r.rsp = get("RSP", "ESP");
  r.r8 = get("R8", "R8");
  r.r9 = get("R9", "R9");
  r.r10 = get("R10", "R10");
  r.r11 = get("R11", "R11");
  r.r12 = get("R12", "R12");
  r.r13 = get("R13", "R13");
  r.r14 = get("R14", "R14");
  r.r15 = get("R15", "R15");
  r.rip = get("RIP", "EIP");
  r.rflags = get("RFL", "EFL");
  auto& s = m.sregs;
  s.cr0 = get("CR0", "CR0");
  s.cr2 = get("CR2", "CR2");
  s.cr3 = get("CR3", "CR3");
  s.cr4 = get("CR4", "CR4");
  s.efer = get("EFER", "EFER");
  static const std::regex kSeg(
      R"((ES|CS|SS|DS|FS|GS|LDT|TR) ?=([0-9a-fA-F]+) ([0-9a-fA-F]+) ([0-9a-fA-F]+) ([0-9a-fA-F]+))");
  for (auto it = std::sregex_iterator(t.begin(), t.end(), kSeg); it != std::sregex_iterator();
       ++it) {
    const auto seg =
        segment(hex((*it)[2].str()), hex((*it)[3].str()), hex((*it)[4].str()), hex((*it)[5].str()));
    const auto name = (*it)[1].str();
    if (name == "ES") s.es = seg;
    if (name == "CS") s.cs = seg;
    if (name == "SS") s.ss = seg;
    if (name == "DS") s.ds = seg;
    if (name == "FS") s.fs = seg;
    if (name == "GS") s.gs = seg;
    if (name == "LDT") s.ldt = seg;
    if (name == "TR") s.tr = seg;
  }
  return m;
}

}  // namespace pagelab::lab

#include "pagelab/paging/dump.hpp"

#include <fmt/core.h>

#include <set>
#include <utility>
#include <vector>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_format.hpp"

namespace pagelab::paging {

namespace {

// A DOT picture of a big identity map would be unreadable; stop drawing after this.
constexpr std::size_t MaxDotEdges = 4096;

struct Leaf {
  std::uint64_t va, pa, bytes;
  PageSize size;
  bool writable, user, nx, global, accessed, dirty, reserved;
  std::uint64_t count = 1;
  [[nodiscard]] bool same_attributes(const Leaf& o) const {
    return size == o.size && writable == o.writable && user == o.user && nx == o.nx &&
           global == o.global && accessed == o.accessed && dirty == o.dirty &&
           reserved == o.reserved;
  }
};

std::uint64_t sign_extend(PagingMode mode, std::uint64_t va) {
  const unsigned width = linear_width(mode);
  if (width < 64 && mode != PagingMode::Bits32 && mode != PagingMode::Pae &&
      (va & bit(width - 1)) != 0) {
    va |= bits(width, 63);
  }
  return va;
}

std::uint64_t read_entry(const PhysicalMemory& m, PagingMode mode, GuestPhys a) {
  return mode == PagingMode::Bits32 ? m.read32(a) : m.read64(a);
}

struct Walker {
  const PhysicalMemory& memory;
  const CpuState& state;
  PagingMode mode;

  // Calls on_entry(level, table, index, decoded, va) for every present entry,
  // top-down, depth-first, in address order.
  template <typename F>
  void visit(GuestPhys table, unsigned level, std::uint64_t prefix, F&& on_entry) const {
    const LevelBits lb = level_bits(mode, level);
    const unsigned entries = 1u << lb.bits;
    for (unsigned i = 0; i < entries; ++i) {
      const GuestPhys at = table + std::uint64_t{i} * entry_bytes(mode);
      const std::uint64_t value = read_entry(memory, mode, at);
      const EntryDecoding d = decode_entry(state, level, value);
      if (!d.present) continue;
      const std::uint64_t va = prefix | (std::uint64_t{i} << lb.lo);
      const bool descend = on_entry(level, table, i, d, va);
      if (descend && !d.leaf && d.violations.empty() && level > 1) {
        visit(d.address, level - 1, va, on_entry);
      }
    }
  }
};

std::string human_bytes(std::uint64_t n) {
  static constexpr std::pair<unsigned, const char*> units[] = {
      {50, "P"}, {40, "T"}, {30, "G"}, {20, "M"}, {10, "K"}};
  for (auto [shift, name] : units) {
    if (n >= bit(shift) && n % bit(shift) == 0) return fmt::format("{}{}", n >> shift, name);
  }
  return fmt::format("{}B", n);
}

}  // namespace

std::string dump_text(const PhysicalMemory& memory, const CpuState& state) {
  const PagingMode mode = state.mode();
  if (mode == PagingMode::None) return "paging is off: linear addresses are physical\n";
  const bool nxe = mode != PagingMode::Bits32 && (state.efer & Efer::Nxe) != 0;
  std::vector<Leaf> leaves;
  struct Rights {
    bool w, u, nx;
  };
  std::vector<Rights> path(top_level(mode) + 2, Rights{true, true, false});
  Walker walker{memory, state, mode};
  walker.visit(
      state.root(), top_level(mode), 0,
      [&](unsigned level, GuestPhys, unsigned, const EntryDecoding& d, std::uint64_t va) {
        Rights r = path[level + 1];
        if (!(mode == PagingMode::Pae && level == 3)) {
          r.w = r.w && (d.value & Pte::Writable) != 0;
          r.u = r.u && (d.value & Pte::User) != 0;
          r.nx = r.nx || (nxe && (d.value & Pte::NoExecute) != 0);
        }
        path[level] = r;
        if (d.leaf || !d.violations.empty()) {
          const std::uint64_t bytes =
              d.leaf ? page_bytes(d.page_size) : bit(level_bits(mode, level).lo);
          leaves.push_back({sign_extend(mode, va), d.address.value(), bytes, d.page_size, r.w, r.u,
                            r.nx, (d.value & Pte::Global) != 0, (d.value & Pte::Accessed) != 0,
                            (d.value & Pte::Dirty) != 0, !d.violations.empty()});
          return false;
        }
        return true;
      });
  std::vector<Leaf> runs;
  for (const Leaf& l : leaves) {
    if (!runs.empty()) {
      Leaf& last = runs.back();
      if (last.same_attributes(l) && last.va + last.bytes == l.va && last.pa + last.bytes == l.pa &&
          !l.reserved) {
        last.bytes += l.bytes;
        ++last.count;
        continue;
      }
    }
    runs.push_back(l);
  }
  const int width = mode == PagingMode::Bits32 || mode == PagingMode::Pae ? 8 : 16;
  std::string out;
  for (const Leaf& r : runs) {
    if (r.reserved) {
      out += fmt::format("0x{:0{}x}-0x{:0{}x}  {:>5}  RESERVED BITS SET (walks fault)\n", r.va,
                         width, r.va + r.bytes, width, human_bytes(r.bytes));
      continue;
    }
    std::string extra;
    if (r.global) extra += " G";
    if (r.accessed) extra += " A";
    if (r.dirty) extra += " D";
    out +=
        fmt::format("0x{:0{}x}-0x{:0{}x}  {:>5}  pa 0x{:x}  {}  {}  {}{}  {} x {}\n", r.va, width,
                    r.va + r.bytes, width, human_bytes(r.bytes), r.pa, r.writable ? "RW" : "ro",
                    r.nx ? "NX" : "x ", r.user ? "USR" : "SUP", extra, r.count, to_string(r.size));
  }
  return out;
}

std::string dump_dot(const PhysicalMemory& memory, const CpuState& state) {
  const PagingMode mode = state.mode();
  std::string out = "digraph page_tables {\n  rankdir=LR;\n  node [shape=record];\n";
  if (mode == PagingMode::None) return out + "}\n";
  auto node = [](unsigned level, GuestPhys table) {
    return fmt::format("t{}_{:x}", level, table.value());
  };
  std::set<std::pair<unsigned, std::uint64_t>> drawn;
  auto draw_table = [&](unsigned level, GuestPhys table) {
    if (drawn.insert({level, table.value()}).second) {
      out += fmt::format("  {} [label=\"{} @ {:#x}\"];\n", node(level, table),
                         intel_level_name(level), table.value());
    }
  };
  out += "  cr3 [shape=ellipse];\n";
  draw_table(top_level(mode), state.root());
  out += fmt::format("  cr3 -> {};\n", node(top_level(mode), state.root()));
  std::size_t edges = 0;
  Walker walker{memory, state, mode};
  walker.visit(
      state.root(), top_level(mode), 0,
      [&](unsigned level, GuestPhys table, unsigned index, const EntryDecoding& d, std::uint64_t) {
        if (++edges > MaxDotEdges) return false;
        const std::string from = node(level, table);
        if (!d.violations.empty()) {
          out += fmt::format(
              "  rsvd_{:x}_{} [shape=octagon,label=\"reserved bits\"];\n  {} -> "
              "rsvd_{:x}_{} [label=\"{}\"];\n",
              table.value(), index, from, table.value(), index, index);
          return false;
        }
        if (d.leaf) {
          out += fmt::format(
              "  page_{:x} [shape=box,label=\"{} page @ {:#x}\"];\n  {} -> page_{:x} "
              "[label=\"{}\"];\n",
              d.address.value(), to_string(d.page_size), d.address.value(), from, d.address.value(),
              index);
          return false;
        }
        const bool first_visit = !drawn.contains({level - 1, d.address.value()});
        draw_table(level - 1, d.address);
        out += fmt::format("  {} -> {} [label=\"{}\"];\n", from, node(level - 1, d.address), index);
        return first_visit;
      });
  if (edges > MaxDotEdges) out += fmt::format("  // truncated after {} edges\n", MaxDotEdges);
  return out + "}\n";
}

}  // namespace pagelab::paging

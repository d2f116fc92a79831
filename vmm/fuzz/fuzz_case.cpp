#include "pagelab/fuzz/fuzz_case.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <stdexcept>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::fuzz {

using paging::bit;
using paging::bits;
using paging::PagingMode;
using paging::Pte;

namespace {

Window make_window(PagingMode mode) {
  Window w;
  w.mode = mode;
  w.top = paging::top_level(mode);
  // Tables sit high in the engine's table pool (the probe stores entries through its
  // identity map), below the area a scenario's later tables come from.
  constexpr std::uint64_t TablesAt = 0x580000;
  for (unsigned l = w.top - 1, k = 0; l >= 1; --l, ++k) w.table[l] = TablesAt + k * 0x1000;
  // Index sets overlap across levels, so that an entry that points at a table of another
  // level (or its own) is read as a present entry there. Level 2's indices keep a 1 GiB
  // page (frame 0) inside 8..12 MiB; the offsets accesses use (fuzz generator) never
  // write these indices through an alias.
  w.indices[1] = {0, 1, 4};
  if (w.top > 2) w.indices[2] = {4, 5};
  if (w.top > 3) w.indices[3] = {0, 4};
  if (w.top > 4) w.indices[4] = {0, 4};
  // Top-level entries the probe does not use: 512 GiB, 256 TiB, 1 GiB, 1 GiB.
  w.top_index = mode == PagingMode::Bits32 ? 256 : 1;
  w.indices[w.top] = {w.top_index};
  return w;
}

bool long_mode(PagingMode mode) {
  return mode == PagingMode::Level4 || mode == PagingMode::Level5;
}

std::string hex(std::uint64_t v) {
  return fmt::format("{:#x}", v);
}

// The frame an entry points at, as the page-table builder follows it to find an entry
// by VA and LEVEL (PageTableBuilder::entry_address).
std::uint64_t pointed_table(PagingMode mode, std::uint64_t v) {
  return mode == PagingMode::Bits32 ? (v & paging::Pte32::Frame4K) : (v & bits(12, 51));
}

// The builder stops at a leaf: PS at level 2, and at level 3 of 4/5-level paging.
bool builder_leaf(PagingMode mode, unsigned level, std::uint64_t v) {
  if (level == 2) return (v & Pte::PageSize) != 0;
  return level == 3 && long_mode(mode) && (v & Pte::PageSize) != 0;
}

// A PAE PDPTE that MOV CR3 loads without #GP: no reserved bit when present (36: the
// smallest MAXPHYADDR of a CPU with PAE, so that this holds on every one).
bool pdpte_loadable(std::uint64_t v, unsigned maxphy) {
  if ((v & Pte::Present) == 0) return true;
  const std::uint64_t reserved =
      paging::PaePdpte::ReservedLow | paging::PaePdpte::ReservedMid | bits(maxphy, 63);
  return (v & reserved) == 0;
}

using Slots = std::map<std::pair<unsigned, unsigned>, std::uint64_t>;

}  // namespace

std::uint64_t Window::address(const std::array<unsigned, MaxLevels + 1>& idx,
                              std::uint64_t offset) const {
  std::uint64_t va = offset;
  for (unsigned l = 1; l <= top; ++l) {
    // Levels 1..top are the mode's own: no check (a call per level of every address).
    va |= std::uint64_t{idx[l]} << paging::level_bits_unchecked(mode, l).lo;
  }
  return va;
}

std::array<unsigned, MaxLevels + 1> Window::canonical() const {
  std::array<unsigned, MaxLevels + 1> idx{};
  for (unsigned l = 1; l <= top; ++l) idx[l] = indices[l].front();
  return idx;
}

std::uint64_t Window::entry_va(unsigned level, unsigned index) const {
  auto idx = canonical();
  idx[level] = index;
  return address(idx, 0);
}

std::uint64_t Window::pointer_to(unsigned level) const {
  const std::uint64_t t = table[level - 1];
  if (mode == PagingMode::Pae && level == 3) return t | Pte::Present;
  return t | Pte::Present | Pte::Writable | Pte::User;
}

const Window& window_for(PagingMode mode) {
  static const Window w32 = make_window(PagingMode::Bits32);
  static const Window wpae = make_window(PagingMode::Pae);
  static const Window w4 = make_window(PagingMode::Level4);
  static const Window w5 = make_window(PagingMode::Level5);
  switch (mode) {
    case PagingMode::Bits32:
      return w32;
    case PagingMode::Pae:
      return wpae;
    case PagingMode::Level5:
      return w5;
    default:
      return w4;
  }
}

std::span<const std::uint64_t> data_frames_4k() {
  static constexpr std::uint64_t Frames[] = {0x900000, 0x901000, 0x902000,
                                             0x9ff000, 0xa00000, 0xc01000};
  return Frames;
}
std::span<const std::uint64_t> data_frames_2m() {
  static constexpr std::uint64_t Frames[] = {0x800000, 0xa00000, 0xc00000, 0xe00000};
  return Frames;
}

bool points_down_the_window(const Window& w, PagingMode mode, unsigned level, std::uint64_t v) {
  return (v & Pte::Present) != 0 && !builder_leaf(mode, level, v) &&
         pointed_table(mode, v) == w.table[level - 1];
}

bool top_entry_loadable(PagingMode mode, std::uint64_t v) {
  return mode != PagingMode::Pae || pdpte_loadable(v, 36);
}

bool FuzzCase::same_program(const FuzzCase& o) const {
  return mode == o.mode && controls == o.controls && entries == o.entries && steps == o.steps;
}

std::size_t FuzzCase::access_count() const {
  return static_cast<std::size_t>(std::count_if(steps.begin(), steps.end(), [](const Step& s) {
    return std::holds_alternative<StepAccess>(s);
  }));
}

std::optional<std::string> check_case(const FuzzCase& c) {
  const Window& w = window_for(c.mode);
  const auto canon = w.canonical();
  Slots cur;
  for (const auto& e : c.entries) {
    if (e.level < 1 || e.level > w.top) return fmt::format("entry at level {}", e.level);
    if (std::find(w.indices[e.level].begin(), w.indices[e.level].end(), e.index) ==
        w.indices[e.level].end()) {
      return fmt::format("entry at level {} index {} is outside the window", e.level, e.index);
    }
    cur[{e.level, e.index}] = e.value;
  }
  auto value = [&](unsigned l, unsigned i) {
    const auto it = cur.find({l, i});
    return it == cur.end() ? std::uint64_t{0} : it->second;
  };
  if (!top_entry_loadable(c.mode, value(w.top, w.top_index))) {
    return "a PAE PDPTE with reserved bits";
  }
  bool unflushed = false;
  for (std::size_t k = 0; k < c.steps.size(); ++k) {
    if (const auto* s = std::get_if<StepSetEntry>(&c.steps[k])) {
      if (s->host && c.mode == PagingMode::Bits32) return "a host write in 32-bit paging";
      for (unsigned l = w.top; l > s->level; --l) {
        if (!points_down_the_window(w, c.mode, l, value(l, canon[l]))) {
          return fmt::format("step {}: level {} index {} is not reachable by its address", k,
                             s->level, s->index);
        }
      }
      if (s->level == w.top && !top_entry_loadable(c.mode, s->value)) {
        return "a PAE PDPTE with reserved bits";
      }
      cur[{s->level, s->index}] = s->value;
      unflushed = true;
    } else if (std::holds_alternative<StepFlush>(c.steps[k])) {
      unflushed = false;
    } else if (const auto* a = std::get_if<StepAccess>(&c.steps[k])) {
      if (a->type == paging::AccessType::Fetch && unflushed) {
        return fmt::format("step {}: a fetch after an entry change without MOV CR3", k);
      }
    }
  }
  return std::nullopt;
}

std::string mode_keyword(PagingMode mode) {
  switch (mode) {
    case PagingMode::Bits32:
      return "32bit";
    case PagingMode::Pae:
      return "pae";
    case PagingMode::Level5:
      return "5level";
    default:
      return "4level";
  }
}

std::string to_pgl(const FuzzCase& c, const PglOptions& options) {
  const Window& w = window_for(c.mode);
  std::string out;
  for (const auto& h : options.header) out += "# " + h + "\n";
  out += "mode " + mode_keyword(c.mode) + "\n";
  if (!options.cpu.empty()) out += "cpu " + options.cpu + "\n";
  const auto& k = c.controls;
  if (!k.wp) out += "cr0 -wp\n";
  std::string cr4;
  if (c.mode == PagingMode::Bits32 && !k.pse) cr4 += " -pse";
  if (k.smep) cr4 += " +smep";
  if (k.smap) cr4 += " +smap";
  if (k.pke) cr4 += " +pke";
  if (k.pge) cr4 += " +pge";
  if (!cr4.empty()) out += "cr4" + cr4 + "\n";
  if (c.mode != PagingMode::Bits32 && !k.nxe) out += "efer -nxe\n";
  if (k.pke && k.pkru != 0) out += "pkru " + hex(k.pkru) + "\n";

  Slots cur;
  unsigned lowest = w.top + 1;
  for (const auto& e : c.entries) {
    if (e.value == 0) continue;
    cur[{e.level, e.index}] = e.value;
    lowest = std::min(lowest, e.level);
  }
  const auto canon = w.canonical();
  // Pointers down the canonical path first, so that every entry below is reachable by
  // its address; then the entries bottom-up, the path's own last.
  for (unsigned l = w.top; l > lowest; --l) {
    out += fmt::format("set entry {} {} = {}\n", hex(w.entry_va(l, canon[l])), l,
                       hex(w.pointer_to(l)));
  }
  for (unsigned l = std::min(lowest, w.top); l <= w.top && lowest <= w.top; ++l) {
    for (const auto i : w.indices[l]) {
      const auto it = cur.find({l, i});
      const std::uint64_t v = it == cur.end() ? 0 : it->second;
      const bool has_pointer = l > lowest && i == canon[l];
      const std::uint64_t written = has_pointer ? w.pointer_to(l) : 0;
      if (v != written)
        out += fmt::format("set entry {} {} = {}\n", hex(w.entry_va(l, i)), l, hex(v));
    }
  }
  std::size_t access = 0;
  for (std::size_t s = 0; s < c.steps.size(); ++s) {
    std::visit(
        [&](const auto& st) {
          using T = std::decay_t<decltype(st)>;
          if constexpr (std::is_same_v<T, StepSetEntry>) {
            out += fmt::format("set entry {} {} = {}{}\n", hex(w.entry_va(st.level, st.index)),
                               st.level, hex(st.value), st.host ? " via host" : "");
          } else if constexpr (std::is_same_v<T, StepInvlpg>) {
            out += "invlpg " + hex(st.va) + "\n";
          } else if constexpr (std::is_same_v<T, StepFlush>) {
            out += "flush\n";
          } else {
            const char* verb = st.type == paging::AccessType::Read    ? "read"
                               : st.type == paging::AccessType::Write ? "write"
                                                                      : "fetch";
            out += fmt::format("{} {}", verb, hex(st.va));
            if (st.type != paging::AccessType::Fetch && st.size != 8) {
              out += fmt::format(" size {}", st.size);
            }
            if (st.privilege == paging::Privilege::User) out += " user";
            if (st.ac) out += " ac";
            if (st.type == paging::AccessType::Write) out += " value " + hex(st.value);
            out += "\n";
            for (const auto& [index, lines] : options.expects) {
              if (index != access) continue;
              for (const auto& line : lines) out += line + "\n";
            }
            ++access;
          }
        },
        c.steps[s]);
  }
  return out;
}

ControlValues control_values(const FuzzCase& c, const OpBase& base) {
  using paging::Cr0;
  using paging::Cr4;
  using paging::Efer;
  auto set = [](std::uint64_t v, std::uint64_t b, bool on) { return on ? (v | b) : (v & ~b); };
  const auto& k = c.controls;
  ControlValues v;
  v.cr0 = set(base.cr0, Cr0::Wp, k.wp);
  v.cr4 = base.cr4;
  v.cr4 = set(v.cr4, Cr4::Smep, k.smep);
  v.cr4 = set(v.cr4, Cr4::Smap, k.smap);
  v.cr4 = set(v.cr4, Cr4::Pke, k.pke);
  v.cr4 = set(v.cr4, Cr4::Pge, k.pge);
  if (c.mode == PagingMode::Bits32) v.cr4 = set(v.cr4, Cr4::Pse, k.pse);
  v.efer = c.mode == PagingMode::Bits32 ? base.efer : set(base.efer, Efer::Nxe, k.nxe);
  v.pkru = k.pke ? k.pkru : 0;
  return v;
}

std::uint64_t entry_address(const FuzzCase& c, const OpBase& base, unsigned level, unsigned index) {
  const Window& w = window_for(c.mode);
  if (level == w.top) return base.root_entry;
  return w.table[level] + std::uint64_t{index} * w.entry_bytes();
}

std::size_t setup_steps(const FuzzCase& c) {
  const auto first = std::find_if(c.steps.begin(), c.steps.end(), [](const Step& s) {
    return std::holds_alternative<StepAccess>(s);
  });
  return static_cast<std::size_t>(first - c.steps.begin());
}

void lower_steps(const FuzzCase& c, const OpBase& base, std::vector<lab::Op>& ops,
                 std::vector<std::size_t>* step_op, std::size_t begin, std::size_t end) {
  end = std::min(end, c.steps.size());
  for (std::size_t k = begin; k < end; ++k) {
    const auto& step = c.steps[k];
    if (step_op != nullptr) step_op->push_back(ops.size());
    std::visit(
        [&](const auto& st) {
          using T = std::decay_t<decltype(st)>;
          if constexpr (std::is_same_v<T, StepSetEntry>) {
            const paging::GuestPhys at(entry_address(c, base, st.level, st.index));
            if (st.host) {
              ops.emplace_back(lab::OpForeignWrite{at, st.value});
            } else {
              ops.emplace_back(lab::OpWriteEntry{at, st.value});
            }
          } else if constexpr (std::is_same_v<T, StepInvlpg>) {
            ops.emplace_back(lab::OpInvlpg{paging::Linear(st.va)});
          } else if constexpr (std::is_same_v<T, StepFlush>) {
            ops.emplace_back(lab::OpWriteControl{lab::ControlRegister::Cr3, base.cr3});
          } else {
            lab::OpAccess a;
            a.address = paging::Linear(st.va);
            a.type = st.type;
            a.size = st.size;
            a.privilege = st.privilege;
            a.ac = st.ac;
            a.write_value = st.value;
            ops.emplace_back(a);
          }
        },
        step);
  }
}

}  // namespace pagelab::fuzz

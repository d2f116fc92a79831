#include "pagelab/fuzz/generator.hpp"

#include <algorithm>
#include <array>
#include <span>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"

namespace pagelab::fuzz {

using paging::AccessType;
using paging::bit;
using paging::bits;
using paging::PagingMode;
using paging::Privilege;
using paging::Pte;

namespace {

std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t x = a ^ rotl(b, 23) ^ 0x5851f42d4c957f2dULL;
  splitmix(x);
  return splitmix(x) ^ b;
}

bool long_mode(PagingMode m) {
  return m == PagingMode::Level4 || m == PagingMode::Level5;
}

// Offsets in a page by access kind. Writes and fetches use offsets whose 8-byte slot
// (32, 33, 127; 256, 264) is no index of the window, so a write through an alias of a
// table never changes an entry a walk reads, and never the fetch targets the engine
// planted. Reads avoid the window's indices too: an entry read through an alias holds
// A bits that an earlier faulting walk may or may not have set.
const std::vector<std::uint64_t> ReadOffsets = {0x100, 0x108, 0x3f8, 0x7f8, 0xff8, 0xffc};
const std::vector<std::uint64_t> WriteOffsets = {0x100, 0x108, 0x3f8};
const std::vector<std::uint64_t> FetchOffsets = {0x800, 0x840};
const std::vector<unsigned> Sizes = {1, 2, 4, 8};

// A few values without the heap (the generator runs once per case, tens of thousands
// of times a second).
template <std::size_t N>
struct SmallList {
  std::array<std::uint64_t, N> v{};
  std::size_t n = 0;
  void push_back(std::uint64_t x) { v[n++] = x; }
  [[nodiscard]] bool empty() const { return n == 0; }
  [[nodiscard]] std::size_t size() const { return n; }
  const std::uint64_t& operator[](std::size_t i) const { return v[i]; }
};

// The window's entries by level and index. Listed in (level, index) order: a case draws
// its mutations by position in that order, so the order is part of what a seed means.
class SlotValues {
 public:
  explicit SlotValues(const Window& w) : w_(w) {}
  [[nodiscard]] std::uint64_t get(unsigned level, unsigned index) const {
    return v_[level][position(level, index)];
  }
  void set(unsigned level, unsigned index, std::uint64_t value) {
    v_[level][position(level, index)] = value;
  }
  // Every (level, index, value) with a non-zero value, in order.
  template <typename F>
  void for_each_set(F&& f) const {
    for (unsigned l = 1; l <= w_.top; ++l) {
      for (std::size_t k = 0; k < w_.indices[l].size(); ++k) {
        if (v_[l][k] != 0) f(l, w_.indices[l][k], v_[l][k]);
      }
    }
  }
  [[nodiscard]] std::size_t count_set() const {
    std::size_t n = 0;
    for_each_set([&](unsigned, unsigned, std::uint64_t) { ++n; });
    return n;
  }

 private:
  [[nodiscard]] std::size_t position(unsigned level, unsigned index) const {
    const auto& ix = w_.indices[level];
    return static_cast<std::size_t>(std::find(ix.begin(), ix.end(), index) - ix.begin());
  }
  const Window& w_;
  std::array<std::array<std::uint64_t, 4>, MaxLevels + 1> v_{};
};

// A set-entry step at the end of the case's history still reaches its entry by address
// through the tables the history left: check_case() of the whole case, for its last step
// (the steps before it passed already).
bool reachable(const Window& w, PagingMode mode, const SlotValues& cur, const StepSetEntry& s) {
  const auto canon = w.canonical();
  for (unsigned l = w.top; l > s.level; --l) {
    if (!points_down_the_window(w, mode, l, cur.get(l, canon[l]))) return false;
  }
  return s.level != w.top || top_entry_loadable(mode, s.value);
}

struct Gen {
  const GeneratorConfig& cfg;
  Rng& rng;
  FuzzCase c;
  const Window& w;
  Profile p;

  unsigned pc(Profile focus, unsigned hit, unsigned other) const {
    return p == focus ? hit : other;
  }

  bool can_1g() const { return long_mode(c.mode) && cfg.features.page1g; }
  bool xd_meaningful() const { return c.mode != PagingMode::Bits32 && cfg.features.nx; }

  std::uint64_t maybe(unsigned percent, std::uint64_t b) { return rng.chance(percent) ? b : 0; }

  std::uint64_t pointer_flags(unsigned level) {
    if (c.mode == PagingMode::Pae && level == 3) {
      return maybe(5, Pte::Pwt) | maybe(5, Pte::Pcd) | maybe(10, bit(9));
    }
    std::uint64_t v = Pte::Present | maybe(pc(Profile::Rights, 80, 90), Pte::Writable) |
                      maybe(pc(Profile::Rights, 80, 88), Pte::User) | maybe(25, Pte::Accessed) |
                      maybe(4, Pte::Pwt) | maybe(4, Pte::Pcd) | maybe(5, bit(9));
    if (xd_meaningful()) v |= maybe(pc(Profile::Rights, 15, 6), Pte::NoExecute);
    return v;
  }

  std::uint64_t leaf_flags(unsigned level) {
    std::uint64_t v = Pte::Present | maybe(pc(Profile::Rights, 60, 75), Pte::Writable) |
                      maybe(pc(Profile::Rights, 55, 70), Pte::User) | maybe(25, Pte::Accessed) |
                      maybe(15, Pte::Dirty) | maybe(5, Pte::Pwt) | maybe(5, Pte::Pcd) |
                      maybe(5, bit(10));
    if (cfg.features.pge) v |= maybe(pc(Profile::Tlb, 40, 15), Pte::Global);
    if (xd_meaningful()) v |= maybe(pc(Profile::Rights, 30, 15), Pte::NoExecute);
    v |= maybe(8, level == 1 ? Pte::Pat : Pte::LargePat);
    if (long_mode(c.mode) && c.controls.pke) {
      v |= maybe(50, rng.below(16) << Pte::ProtectionKeyShift);
    }
    return v;
  }

  // A value with P clear: ignored by the CPU. Its frame is one of the window's (a
  // mutation that sets P again must not send a walk outside them), its flags random.
  std::uint64_t not_present(unsigned level) {
    std::uint64_t v = level > 1 && rng.chance(50) && leaf_allowed(level)
                          ? leaf(level)
                          : w.table[level > 1 ? level - 1 : 1 + rng.below(w.top - 1)];
    v ^= rng.next() & (bits(1, 6) | bits(8, 11));
    if (c.mode != PagingMode::Bits32) v ^= rng.next() & bits(52, 62);
    if (c.mode == PagingMode::Pae && level == 3) v &= ~bits(1, 8) & ~bits(52, 63);
    return v & ~Pte::Present;
  }

  bool leaf_allowed(unsigned level) const {
    if (level == 1) return true;
    if (level == 2) return c.mode != PagingMode::Bits32 || cfg.features.pse;
    return level == 3 && can_1g();
  }

  std::uint64_t leaf_frame(unsigned level) {
    if (level == 1) {
      // A 4 KiB leaf may also name one of the window's tables (an alias: reads see entries).
      if (rng.chance(pc(Profile::Modes, 15, 5))) return w.table[1 + rng.below(w.top - 1)];
      return rng.pick(data_frames_4k());
    }
    if (level == 3) return DataFrame1G;
    if (c.mode == PagingMode::Bits32) return rng.chance(50) ? 0x800000 : 0xc00000;
    return rng.pick(data_frames_2m());
  }

  std::uint64_t leaf(unsigned level) {
    std::uint64_t v = leaf_frame(level) | leaf_flags(level);
    if (level > 1) v |= Pte::PageSize;
    return v;
  }

  // A fresh value for entry (level, index).
  std::uint64_t fresh(unsigned level, unsigned index) {
    const auto canon = w.canonical();
    if (level == w.top) {
      if (rng.chance(3)) return not_present(level);
      return w.table[level - 1] | (w.pointer_to(level) & Pte::Present) | pointer_flags(level);
    }
    const bool on_path = index == canon[level];
    const unsigned r = static_cast<unsigned>(rng.below(100));
    if (level == 1) {
      if (r < 82) return leaf(1);
      if (r < 92) return 0;
      return not_present(1);
    }
    const unsigned leaf_w = leaf_allowed(level) ? pc(Profile::Modes, 30, 12) : 0;
    const unsigned alias_w = pc(Profile::Modes, 12, 4);
    const unsigned pointer_w = on_path ? 80 : 60;
    const unsigned total = pointer_w + leaf_w + alias_w + 12;
    const unsigned x = static_cast<unsigned>(rng.below(total));
    if (x < pointer_w) return w.table[level - 1] | pointer_flags(level);
    if (x < pointer_w + leaf_w) return leaf(level);
    if (x < pointer_w + leaf_w + alias_w) {
      // Any table of the window: its own (a self-map), one above, one further down.
      return w.table[1 + rng.below(w.top - 1)] | pointer_flags(level);
    }
    return rng.chance(60) ? 0 : not_present(level);
  }

  // One bit of `v` flipped: a flag, a reserved bit, an ignored bit. Never a frame bit
  // that would send an access outside the window's frames, never PS of a 1 GiB page
  // (frame 0 as a table would be the probe) nor of a 32-bit PDE pointer (a 4 MiB page
  // over the table pool).
  std::uint64_t mutate(unsigned level, std::uint64_t v) {
    const bool is32 = c.mode == PagingMode::Bits32;
    const bool pdpte = c.mode == PagingMode::Pae && level == 3;
    if (pdpte) return v ^ (rng.chance(50) ? Pte::Present : (rng.chance(50) ? Pte::Pwt : Pte::Pcd));
    const bool huge = level > 1 && (v & Pte::PageSize) != 0;
    SmallList<16> menu;
    for (const auto b : {Pte::Present, Pte::Writable, Pte::User, Pte::Pwt, Pte::Pcd, Pte::Accessed,
                         Pte::Dirty, Pte::Global, bit(9), bit(11)}) {
      menu.push_back(b);
    }
    const bool ps_safe = level == 1 || (!is32 && !(level == 3 && huge)) || (is32 && huge);
    if (ps_safe) menu.push_back(Pte::PageSize);
    if (!is32) {
      menu.push_back(Pte::NoExecute);
      menu.push_back(bit(52 + static_cast<unsigned>(rng.below(7))));  // ignored
      if (long_mode(c.mode)) menu.push_back(bit(59 + static_cast<unsigned>(rng.below(4))));
    }
    SmallList<8> reserved;
    if (!is32) {
      const unsigned m = std::min(cfg.features.maxphyaddr, 52u);
      reserved.push_back(bit(51));
      if (m < 51) reserved.push_back(bit(m + static_cast<unsigned>(rng.below(51 - m))));
      if (!c.controls.nxe) reserved.push_back(Pte::NoExecute);
      if (huge && level == 2) reserved.push_back(bit(13 + static_cast<unsigned>(rng.below(8))));
      if (huge && level == 3) reserved.push_back(bit(13 + static_cast<unsigned>(rng.below(17))));
      if (level >= 4) reserved.push_back(Pte::PageSize);
    } else if (huge) {
      reserved.push_back(bit(paging::Pte32::Pse36ReservedHi));
    }
    const unsigned reserved_share = pc(Profile::Reserved, 70, 20);
    if (!reserved.empty() && rng.chance(reserved_share)) return v ^ rng.pick(reserved);
    return v ^ rng.pick(menu);
  }

  void controls() {
    const auto& f = cfg.features;
    auto& k = c.controls;
    k.wp = rng.chance(pc(Profile::Rights, 50, 85));
    k.nxe = xd_meaningful() && rng.chance(pc(Profile::Reserved, 60, 85));
    k.pse = c.mode != PagingMode::Bits32 || (f.pse && rng.chance(85));
    k.smep = f.smep && rng.chance(pc(Profile::Rights, 45, 15));
    k.smap = f.smap && rng.chance(pc(Profile::Rights, 45, 15));
    k.pke = f.pku && long_mode(c.mode) && rng.chance(pc(Profile::Rights, 45, 12));
    k.pge = f.pge && rng.chance(pc(Profile::Tlb, 50, 20));
    if (k.pke) {
      std::uint32_t pkru = 0;
      // Key 0 stays open: the probe's own CPL3 stub and records are key-0 pages.
      for (unsigned key = 1; key < paging::Pkru::Keys; ++key) {
        if (rng.chance(25)) pkru |= paging::Pkru::access_disable(key);
        if (rng.chance(35)) pkru |= paging::Pkru::write_disable(key);
      }
      k.pkru = pkru;
    }
  }

  std::uint64_t random_va(AccessType type) {
    std::array<unsigned, MaxLevels + 1> idx{};
    for (unsigned l = 1; l <= w.top; ++l) {
      idx[l] = rng.chance(45) ? w.indices[l].front() : rng.pick(w.indices[l]);
    }
    const auto& offsets = type == AccessType::Read    ? ReadOffsets
                          : type == AccessType::Write ? WriteOffsets
                                                      : FetchOffsets;
    std::uint64_t va = w.address(idx, rng.pick(offsets));
    // Now and then a non-canonical address (#GP, CR2 unchanged).
    if (long_mode(c.mode) && rng.chance(2)) va ^= bit(c.mode == PagingMode::Level5 ? 56 : 47);
    return va;
  }

  StepAccess access(bool unflushed) {
    StepAccess a;
    const unsigned r = static_cast<unsigned>(rng.below(100));
    a.type = r < 50 ? AccessType::Read : r < 82 ? AccessType::Write : AccessType::Fetch;
    if (a.type == AccessType::Fetch && unflushed) a.type = AccessType::Read;
    a.va = random_va(a.type);
    a.size = a.type == AccessType::Fetch ? 8 : rng.pick(Sizes);
    // A read at 0xffc of 8 bytes crosses into the next page; other kinds stay in theirs.
    a.privilege = rng.chance(pc(Profile::Rights, 50, 40)) ? Privilege::User : Privilege::Supervisor;
    if (a.privilege == Privilege::Supervisor && c.controls.smap) a.ac = rng.chance(40);
    if (a.type == AccessType::Write) a.value = rng.next() & ~Pte::Present;
    return a;
  }

  void build() {
    c.mode = mode_of_case(cfg, c.seed, c.number);
    controls();
    SlotValues cur(w);
    for (unsigned l = w.top; l >= 1; --l) {
      for (const auto i : w.indices[l]) cur.set(l, i, fresh(l, i));
    }
    // Single-entry mutations.
    const unsigned mutations =
        p == Profile::Reserved ? 1 + static_cast<unsigned>(rng.below(2)) : (rng.chance(35) ? 1 : 0);
    for (unsigned m = 0; m < mutations; ++m) {
      const std::size_t n = cur.count_set();
      if (n == 0) break;
      std::size_t pick = rng.below(n);
      cur.for_each_set([&](unsigned l, unsigned i, std::uint64_t v) {
        if (pick-- == 0) cur.set(l, i, mutate(l, v));
      });
    }
    c.entries.reserve(cur.count_set());
    cur.for_each_set([&](unsigned l, unsigned i, std::uint64_t v) {
      c.entries.push_back({l, i, v});
    });
    // Whether the tree's top entry can be loaded (check_case's first test); never false
    // for what fresh() and mutate() make, kept so that the steps follow check_case exactly.
    const bool top_ok = top_entry_loadable(c.mode, cur.get(w.top, w.top_index));
    c.steps.reserve(24);
    // History.
    const unsigned rounds = 1 + static_cast<unsigned>(rng.below(pc(Profile::Tlb, 4, 3)));
    bool unflushed = false;
    for (unsigned round = 0; round < rounds; ++round) {
      const unsigned accesses = 1 + static_cast<unsigned>(rng.below(pc(Profile::Rights, 5, 3)));
      std::array<StepAccess, 5> recent_store{};
      for (unsigned k = 0; k < accesses; ++k) {
        recent_store[k] = access(unflushed);
        c.steps.emplace_back(recent_store[k]);
      }
      const std::span<const StepAccess> recent(recent_store.data(), accesses);
      if (round + 1 == rounds) break;
      // An entry change: a slot of the window, mutated or fresh.
      const unsigned level = 1 + static_cast<unsigned>(rng.below(w.top));
      const unsigned index = rng.pick(w.indices[level]);
      StepSetEntry s;
      s.level = level;
      s.index = index;
      const auto old = cur.get(level, index);
      s.value = old != 0 && rng.chance(60) ? mutate(level, old) : fresh(level, index);
      // A host write costs a round trip of its own (a sync point in the batch): rare
      // outside the tlb focus.
      s.host = c.mode != PagingMode::Bits32 && rng.chance(pc(Profile::Tlb, 12, 1));
      if (!top_ok || !reachable(w, c.mode, cur, s)) continue;
      c.steps.emplace_back(s);
      cur.set(level, index, s.value);
      unflushed = true;
      const unsigned r = static_cast<unsigned>(rng.below(100));
      if (r < 30) {
        c.steps.emplace_back(StepInvlpg{recent[rng.below(recent.size())].va});
      } else if (r < 55) {
        c.steps.emplace_back(StepFlush{});
        unflushed = false;
      }
      // Accesses to the same addresses again: stale or fresh.
      for (const auto& a : recent) {
        if (rng.chance(60)) {
          StepAccess again = a;
          if (again.type == AccessType::Fetch && unflushed) again.type = AccessType::Read;
          c.steps.emplace_back(again);
        }
      }
    }
  }
};

}  // namespace

Rng::Rng(std::uint64_t seed) {
  std::uint64_t x = seed;
  for (auto& s : s_) s = splitmix(x);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Rng::below(std::uint64_t n) {
  // Lemire's multiply-shift: the same on every machine (no library distribution).
  return static_cast<std::uint64_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

bool Rng::chance(unsigned percent) {
  return below(100) < percent;
}

std::optional<Profile> profile_named(const std::string& name) {
  if (name == "all") return Profile::All;
  if (name == "tlb") return Profile::Tlb;
  if (name == "rights") return Profile::Rights;
  if (name == "reserved") return Profile::Reserved;
  if (name == "modes") return Profile::Modes;
  return std::nullopt;
}

std::string to_string(Profile profile) {
  switch (profile) {
    case Profile::Tlb:
      return "tlb";
    case Profile::Rights:
      return "rights";
    case Profile::Reserved:
      return "reserved";
    case Profile::Modes:
      return "modes";
    default:
      return "all";
  }
}

std::vector<std::string> profile_names() {
  return {"tlb", "rights", "reserved", "modes", "all"};
}

PagingMode mode_of_case(const GeneratorConfig& config, std::uint64_t seed, std::uint64_t number) {
  constexpr unsigned BlockBits = 9;  // 512 cases of one mode in a row
  return config.modes[mix(seed, number >> BlockBits) % config.modes.size()];
}

FuzzCase generate_case(const GeneratorConfig& config, std::uint64_t seed, std::uint64_t number) {
  Rng rng(mix(seed, number));
  // The profile `all` draws a focus per case.
  Profile p = config.profile;
  if (p == Profile::All) {
    static const std::vector<Profile> focus = {Profile::All, Profile::Tlb, Profile::Rights,
                                               Profile::Reserved, Profile::Modes};
    p = rng.pick(focus);
  }
  const PagingMode mode = mode_of_case(config, seed, number);
  Gen g{config, rng, {}, window_for(mode), p};
  g.c.seed = seed;
  g.c.number = number;
  g.build();
  return std::move(g.c);
}

}  // namespace pagelab::fuzz

#include "pagelab/matrix/flag_space.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <sstream>
#include <stdexcept>

namespace pagelab::matrix {

using paging::PageSize;
using paging::PagingMode;

namespace {

constexpr std::array<std::string_view, FlagCount> FlagTokens = {
    "p", "rw", "us", "a", "d", "nx", "pk", "r51", "rmax", "ps", "rlow"};
constexpr std::array<std::string_view, ControlCount> ControlTokens = {"wp", "smep", "smap", "pke",
                                                                      "nxe"};
constexpr std::array<std::string_view, ControlCount> ControlNames = {
    "cr0.wp", "cr4.smep", "cr4.smap", "cr4.pke", "efer.nxe"};
constexpr std::array<std::string_view, 3> AccessTokens = {"read", "write", "fetch"};

bool wide_entries(PagingMode m) {
  return m != PagingMode::Bits32;
}
bool long_mode(PagingMode m) {
  return m == PagingMode::Level4 || m == PagingMode::Level5;
}
// XD exists in the entries of PAE, 4- and 5-level paging; with EFER.NXE=0 it is a
// reserved bit there (SDM tables 4-11..4-19).
bool has_nx(PagingMode m) {
  return wide_entries(m);
}

Setup level_setup(unsigned level, std::uint16_t flags) {
  Setup s;
  s.level[level] = flags;
  return s;
}

Setup and_of(const Setup& a, const Setup& b) {
  Setup r;
  for (unsigned i = 0; i < r.level.size(); ++i) r.level[i] = a.level[i] & b.level[i];
  r.control = a.control & b.control;
  r.pkru = a.pkru & b.pkru;
  r.access = a.access & b.access;
  return r;
}

std::string flags_text(std::uint16_t flags) {
  if (flags == 0) return "-";
  std::string out;
  for (unsigned i = 0; i < FlagCount; ++i) {
    if ((flags & (1u << i)) == 0) continue;
    if (!out.empty()) out += ',';
    out += FlagTokens[i];
  }
  return out;
}

// Present plus every subset of `optional` (in binary order), after the not-present
// value: a not-present entry carries no other flag, the CPU ignores them all.
Dimension entry_dimension(std::string name, unsigned level, std::uint16_t optional) {
  Dimension d;
  d.name = std::move(name);
  d.values.push_back(level_setup(level, 0));
  d.labels.emplace_back("-");
  std::vector<std::uint16_t> bits;
  for (unsigned i = 0; i < FlagCount; ++i)
    if ((optional & (1u << i)) != 0) bits.push_back(static_cast<std::uint16_t>(1u << i));
  for (unsigned m = 0; m < (1u << bits.size()); ++m) {
    std::uint16_t f = FlagP;
    for (unsigned k = 0; k < bits.size(); ++k)
      if ((m & (1u << k)) != 0) f |= bits[k];
    d.values.push_back(level_setup(level, f));
    d.labels.push_back(flags_text(f));
  }
  return d;
}

Dimension boolean_dimension(std::string name, Setup on) {
  Dimension d;
  d.name = std::move(name);
  d.values = {Setup{}, on};
  d.labels = {"0", "1"};
  return d;
}

unsigned stop_level(const std::vector<unsigned>& levels, PagingMode pm, const Setup& s) {
  const bool nx_reserved = has_nx(pm) && (s.control & ControlNxe) == 0;
  for (const auto l : levels) {
    const auto f = s.level[l];
    if ((f & FlagP) == 0 || (f & ReservedFlags) != 0 || (nx_reserved && (f & FlagNx) != 0))
      return l;
  }
  return 0;
}

}  // namespace

std::string_view flag_token(unsigned index) {
  return FlagTokens.at(index);
}
std::string_view control_token(unsigned index) {
  return ControlTokens.at(index);
}

const std::vector<MatrixMode>& matrix_modes() {
  static const std::vector<MatrixMode> modes = {
      {"4level-4k", PagingMode::Level4, PageSize::Size4K, 1, "4-level paging, 4 KiB leaves (PT)"},
      {"4level-2m", PagingMode::Level4, PageSize::Size2M, 2, "4-level paging, 2 MiB leaves (PD)"},
      {"4level-1g", PagingMode::Level4, PageSize::Size1G, 3,
       "4-level paging, 1 GiB leaves (PDPT; needs 1GB-pages)"},
      {"5level", PagingMode::Level5, PageSize::Size4K, 1,
       "5-level paging, 4 KiB leaves (needs LA57)"},
      {"pae-4k", PagingMode::Pae, PageSize::Size4K, 1,
       "PAE paging, 4 KiB leaves; PDPTEs loaded at MOV CR3"},
      {"pae-2m", PagingMode::Pae, PageSize::Size2M, 2,
       "PAE paging, 2 MiB leaves; PDPTEs loaded at MOV CR3"},
      {"32bit-4k", PagingMode::Bits32, PageSize::Size4K, 1, "32-bit paging, 4 KiB leaves"},
      {"32bit-4m", PagingMode::Bits32, PageSize::Size4M, 2,
       "32-bit paging, 4 MiB leaves (CR4.PSE; PSE-36 reserved bit 21)"},
  };
  return modes;
}

std::vector<MatrixMode> select_modes(std::string_view text) {
  std::vector<MatrixMode> out;
  for (const auto& m : matrix_modes()) {
    const bool group = m.name.size() > text.size() && m.name.compare(0, text.size(), text) == 0 &&
                       m.name[text.size()] == '-';
    if (text == "all" || m.name == text || group) out.push_back(m);
  }
  return out;
}

std::string_view level_token(PagingMode mode, unsigned level) {
  (void)mode;
  static constexpr std::array<std::string_view, 6> names = {"?",    "pt",   "pd",
                                                            "pdpt", "pml4", "pml5"};
  return level < names.size() ? names[level] : "?";
}

FlagSpace::FlagSpace(const MatrixMode& mode) : mode_(mode) {
  const auto pm = mode.paging;
  for (unsigned l = paging::top_level(pm); l >= mode.leaf_level; --l) levels_.push_back(l);
  const bool wide = wide_entries(pm);
  const bool pae_pdpt = pm == PagingMode::Pae;  // level 3 is the PDPTE register
  const unsigned leaf = mode.leaf_level;
  const unsigned parent =
      leaf + 1 <= paging::top_level(pm) && !(pae_pdpt && leaf + 1 == 3) ? leaf + 1 : 0;

  // Controls, outermost: changing one costs a control-register write (and on TCG a
  // flush of its whole TLB), so the odometer turns them least often.
  controls_ = ControlWp | ControlSmep | ControlSmap;
  if (wide) controls_ |= ControlNxe;           // 32-bit paging has no XD; EFER.NXE changes nothing
  if (long_mode(pm)) controls_ |= ControlPke;  // CR4.PKE applies only in IA-32e mode
  for (unsigned i = ControlCount; i-- > 0;) {
    const auto c = static_cast<std::uint8_t>(1u << i);
    if ((controls_ & c) == 0) continue;
    Setup on;
    on.control = c;
    dims_.push_back(boolean_dimension(std::string(ControlNames[i]), on));
  }
  if (long_mode(pm)) {
    Setup ad, wd;
    ad.pkru = PkruAd;
    wd.pkru = PkruWd;
    dims_.push_back(boolean_dimension("pkru.ad", ad));
    dims_.push_back(boolean_dimension("pkru.wd", wd));
  }

  // Levels above the leaf's parent: one restriction at a time (the parent and the leaf
  // get every combination; the rights of all levels combine the same way, SDM 4.6).
  std::vector<unsigned> upper;
  for (const auto l : levels_)
    if (l != leaf && l != parent) upper.push_back(l);
  if (!upper.empty()) {
    Dimension d;
    d.name = "upper";
    Setup base;
    for (const auto l : upper) {
      base.level[l] = pae_pdpt && l == 3 ? FlagP : FlagP | FlagRw | FlagUs | FlagA;
    }
    d.values.push_back(base);
    d.labels.emplace_back("default");
    for (const auto l : upper) {
      std::vector<std::pair<std::uint16_t, std::string>> variants;
      if (pae_pdpt && l == 3) {
        variants = {{0, "-p"}};  // a PDPTE has no R/W, U/S, A or XD (SDM table 4-8)
      } else {
        const auto all = base.level[l];
        variants = {{0, "-p"},
                    {static_cast<std::uint16_t>(all & ~FlagRw), "-rw"},
                    {static_cast<std::uint16_t>(all & ~FlagUs), "-us"},
                    {static_cast<std::uint16_t>(all & ~FlagA), "-a"}};
        if (has_nx(pm)) variants.emplace_back(static_cast<std::uint16_t>(all | FlagNx), "+nx");
      }
      for (const auto& [flags, label] : variants) {
        Setup v = base;
        v.level[l] = flags;
        d.values.push_back(v);
        d.labels.push_back(fmt::format("{}:{}", level_token(pm, l), label));
      }
    }
    dims_.push_back(std::move(d));
  }
  if (parent != 0) {
    std::uint16_t opt = FlagRw | FlagUs | FlagA;
    if (has_nx(pm)) opt |= FlagNx;
    dims_.push_back(entry_dimension(std::string(level_token(pm, parent)), parent, opt));
  }
  {
    std::uint16_t opt = FlagRw | FlagUs | FlagA | FlagD;
    if (has_nx(pm)) opt |= FlagNx;
    if (long_mode(pm)) opt |= FlagPk;
    dims_.push_back(entry_dimension(std::string(level_token(pm, leaf)), leaf, opt));
  }
  // One reserved bit, in whichever entry of the walk.
  {
    Dimension d;
    d.name = "rsvd";
    d.values.emplace_back();
    d.labels.emplace_back("none");
    for (const auto l : levels_) {
      std::vector<std::uint16_t> bits;
      if (wide) bits = {FlagR51, FlagRmax};
      if (long_mode(pm) && l >= 4) bits.push_back(FlagRps);
      if (l == leaf && mode.leaf_size != PageSize::Size4K) bits.push_back(FlagRlow);
      for (const auto b : bits) {
        d.values.push_back(level_setup(l, b));
        d.labels.push_back(fmt::format("{}:{}", level_token(pm, l), flags_text(b)));
      }
    }
    if (d.values.size() > 1) dims_.push_back(std::move(d));
  }
  // The access, innermost: consecutive cases share their page tables.
  {
    Dimension d;
    d.name = "access";
    for (unsigned i = 0; i < AccessTokens.size(); ++i) {
      Setup s;
      s.access = i == 0 ? 0 : i == 1 ? AccessWrite : AccessFetch;
      d.values.push_back(s);
      d.labels.emplace_back(AccessTokens[i]);
    }
    dims_.push_back(std::move(d));
    Setup user, ac;
    user.access = AccessUser;
    ac.access = AccessAc;
    dims_.push_back(boolean_dimension("cpl3", user));
    dims_.push_back(boolean_dimension("rflags.ac", ac));
    Setup twice;
    twice.access = AccessTwice;
    dims_.push_back(boolean_dimension("twice", twice));
  }

  const std::vector<unsigned> levels = levels_;
  const bool nx_exists = has_nx(pm);
  auto reserved_count = [levels, nx_exists](const Setup& s) {
    int n = 0;
    for (const auto l : levels) {
      // Clearing the lowest bit per step: no libgcc popcount call in the hot walk.
      for (unsigned r = s.level[l] & ReservedFlags; r != 0; r &= r - 1) ++n;
      if (nx_exists && (s.control & ControlNxe) == 0 && (s.level[l] & FlagNx) != 0) ++n;
    }
    return n;
  };
  rules_.push_back({"ac-supervisor-data-smap",
                    "RFLAGS.AC changes only supervisor data accesses, and only with CR4.SMAP "
                    "(SDM 4.6.1)",
                    [](const Setup& s) {
                      return (s.access & AccessAc) != 0 &&
                             ((s.access & (AccessUser | AccessFetch)) != 0 ||
                              (s.control & ControlSmap) == 0);
                    }});
  rules_.push_back({"pkru-needs-pke",
                    "PKRU rights are ignored with CR4.PKE=0 (SDM 4.6.2); leaves with key 1 are "
                    "still enumerated with PKE=0",
                    [](const Setup& s) { return s.pkru != 0 && (s.control & ControlPke) == 0; }});
  rules_.push_back({"reserved-in-present-entry",
                    "a not-present entry's other bits are ignored (SDM 4.7): a reserved bit is "
                    "only set in a present entry",
                    [levels](const Setup& s) {
                      return std::any_of(levels.begin(), levels.end(), [&](unsigned l) {
                        return (s.level[l] & ReservedFlags) != 0 && (s.level[l] & FlagP) == 0;
                      });
                    }});
  rules_.push_back({"one-reserved-bit",
                    "a reserved-bit fault ends the walk and a second reserved bit cannot change "
                    "its error code: at most one per case (XD with EFER.NXE=0 counts)",
                    [reserved_count](const Setup& s) { return reserved_count(s) > 1; }});
  const unsigned parent_level = parent;
  rules_.push_back(
      {"walk-ends-at-fault",
       "the walk ends at a not-present entry or one with a reserved bit (SDM 4.7): the entries "
       "below are never read, so only their first value is enumerated",
       [levels, pm, leaf, parent_level](const Setup& s) {
         const auto stop = stop_level(levels, pm, s);
         if (stop == 0) return false;
         for (const auto l : levels) {
           if (l >= stop) continue;
           if ((s.level[l] & ReservedFlags) != 0) return true;
           if ((l == leaf || l == parent_level) && s.level[l] != 0) return true;
         }
         return false;
       }});
}

unsigned stopping_level(const FlagSpace& space, const Setup& s) {
  return stop_level(space.levels(), space.mode().paging, s);
}

std::uint64_t FlagSpace::assignments() const {
  std::uint64_t n = 1;
  for (const auto& d : dims_) n *= d.values.size();
  return n;
}

const Rule* FlagSpace::forbidding_rule(const Setup& s) const {
  for (const auto& r : rules_)
    if (r.forbids(s)) return &r;
  return nullptr;
}

bool FlagSpace::legal(const Setup& s) const {
  return forbidding_rule(s) == nullptr;
}

// Depth first, the first dimension outermost. A prefix a rule forbids is not walked
// further: the rules only look at bits, later dimensions only add bits, and every rule
// reads its dimensions in an order where what it forbids stays forbidden (tests compare
// this walk with the plain product on the small modes).
void FlagSpace::for_each(const std::function<bool(std::uint64_t, const Setup&)>& f) const {
  const auto n = dims_.size();
  std::vector<Setup> prefix(n + 1);
  std::uint64_t number = 0;
  bool go = true;
  // `same`: the value chosen at k-1 added nothing, so prefix[k] is its parent, which
  // the rules already allowed (half the nodes of a yes/no dimension; the rules are the
  // cost of the walk).
  auto visit = [&](auto& self, std::size_t k, bool same) -> void {
    if (!same && !legal(prefix[k])) return;
    if (k == n) {
      go = f(number, prefix[n]);
      ++number;
      return;
    }
    for (const auto& v : dims_[k].values) {
      prefix[k + 1] = prefix[k];
      prefix[k + 1] |= v;
      self(self, k + 1, prefix[k + 1] == prefix[k]);
      if (!go) return;
    }
  };
  visit(visit, 0, false);
}

void FlagSpace::for_each_assignment(const std::function<void(const Setup&)>& f) const {
  const auto n = dims_.size();
  std::vector<Setup> prefix(n + 1);
  auto visit = [&](auto& self, std::size_t k) -> void {
    if (k == n) {
      f(prefix[n]);
      return;
    }
    for (const auto& v : dims_[k].values) {
      prefix[k + 1] = prefix[k];
      prefix[k + 1] |= v;
      self(self, k + 1);
    }
  };
  visit(visit, 0);
}

std::uint64_t FlagSpace::count(std::uint64_t at_most) const {
  std::uint64_t n = 0;
  if (at_most == 0) return 0;
  for_each([&](std::uint64_t, const Setup&) {
    ++n;
    return n < at_most;
  });
  return n;
}

std::string FlagSpace::name(const Setup& s) const {
  std::string out = mode_.name;
  for (const auto l : levels_) {
    out += fmt::format(" {}:{}", level_token(mode_.paging, l), flags_text(s.level[l]));
  }
  for (unsigned i = 0; i < ControlCount; ++i) {
    if ((s.control & (1u << i)) != 0) {
      out += ' ';
      out += ControlTokens[i];
    }
  }
  if (s.pkru != 0) {
    out += " pkru:";
    out += (s.pkru & PkruAd) != 0 ? ((s.pkru & PkruWd) != 0 ? "ad,wd" : "ad") : "wd";
  }
  out += ' ';
  out += (s.access & AccessWrite) != 0 ? "write" : (s.access & AccessFetch) != 0 ? "fetch" : "read";
  out += (s.access & AccessUser) != 0 ? " cpl3" : " cpl0";
  if ((s.access & AccessAc) != 0) out += " ac";
  if ((s.access & AccessTwice) != 0) out += " twice";
  return out;
}

std::optional<Setup> FlagSpace::parse(std::string_view text, std::string* error) const {
  auto fail = [&](std::string why) -> std::optional<Setup> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  std::istringstream in{std::string(text)};
  std::string token;
  if (!(in >> token) || token != mode_.name) {
    return fail(fmt::format("a case name starts with its mode ({})", mode_.name));
  }
  Setup s;
  bool have_access = false, have_cpl = false;
  std::vector<unsigned> seen_levels;
  while (in >> token) {
    const auto colon = token.find(':');
    if (colon != std::string::npos) {
      const auto head = token.substr(0, colon);
      const auto tail = token.substr(colon + 1);
      std::vector<std::string> parts;
      if (tail != "-") {
        std::string part;
        std::istringstream ps(tail);
        while (std::getline(ps, part, ',')) parts.push_back(part);
        if (parts.empty()) return fail(fmt::format("'{}' lists no flags (use {}:-)", token, head));
      }
      if (head == "pkru") {
        for (const auto& p : parts) {
          if (p == "ad") {
            s.pkru |= PkruAd;
          } else if (p == "wd") {
            s.pkru |= PkruWd;
          } else {
            return fail(fmt::format("'{}': PKRU rights are ad and wd", p));
          }
        }
        continue;
      }
      const auto lv = std::find_if(levels_.begin(), levels_.end(), [&](unsigned l) {
        return level_token(mode_.paging, l) == head;
      });
      if (lv == levels_.end()) {
        return fail(fmt::format("'{}': {} has no level {}", token, mode_.name, head));
      }
      if (std::find(seen_levels.begin(), seen_levels.end(), *lv) != seen_levels.end()) {
        return fail(fmt::format("level {} is named twice", head));
      }
      seen_levels.push_back(*lv);
      for (const auto& p : parts) {
        const auto f = std::find(FlagTokens.begin(), FlagTokens.end(), p);
        if (f == FlagTokens.end()) {
          return fail(fmt::format("'{}' is not an entry flag (one of: {})", p,
                                  fmt::join(FlagTokens, ", ")));
        }
        s.level[*lv] |= static_cast<std::uint16_t>(1u << (f - FlagTokens.begin()));
      }
      continue;
    }
    const auto c = std::find(ControlTokens.begin(), ControlTokens.end(), token);
    if (c != ControlTokens.end()) {
      s.control |= static_cast<std::uint8_t>(1u << (c - ControlTokens.begin()));
      continue;
    }
    const auto a = std::find(AccessTokens.begin(), AccessTokens.end(), token);
    if (a != AccessTokens.end()) {
      if (have_access) return fail("a case has one access (read, write or fetch)");
      have_access = true;
      s.access |= a == AccessTokens.begin()       ? 0
                  : a == AccessTokens.begin() + 1 ? AccessWrite
                                                  : AccessFetch;
      continue;
    }
    if (token == "cpl0" || token == "cpl3") {
      if (have_cpl) return fail("a case has one CPL (cpl0 or cpl3)");
      have_cpl = true;
      if (token == "cpl3") s.access |= AccessUser;
      continue;
    }
    if (token == "ac") {
      s.access |= AccessAc;
      continue;
    }
    if (token == "twice") {
      s.access |= AccessTwice;
      continue;
    }
    return fail(fmt::format("'{}' is not a level, control bit, access, CPL, ac or twice", token));
  }
  if (seen_levels.size() != levels_.size()) {
    return fail(fmt::format("a {} case names every level ({} of {} given)", mode_.name,
                            seen_levels.size(), levels_.size()));
  }
  if (!have_access || !have_cpl) return fail("a case names its access and its CPL");
  // Each dimension must offer the part of the setup it owns; nothing may be left over.
  Setup covered;
  for (const auto& d : dims_) {
    Setup owned;
    for (const auto& v : d.values) owned |= v;
    covered |= owned;
    const auto part = and_of(s, owned);
    if (std::find(d.values.begin(), d.values.end(), part) == d.values.end()) {
      return fail(fmt::format("no value of dimension '{}' in {} gives this ({})", d.name,
                              mode_.name, fmt::join(d.labels, " ")));
    }
  }
  if (!(and_of(s, covered) == s)) {
    return fail(fmt::format("the name sets something no dimension of {} offers", mode_.name));
  }
  if (const auto* r = forbidding_rule(s)) {
    return fail(fmt::format("not a case: rule {} ({})", r->name, r->reason));
  }
  return s;
}

std::optional<std::uint64_t> FlagSpace::number_of(const Setup& s) const {
  std::optional<std::uint64_t> found;
  for_each([&](std::uint64_t n, const Setup& c) {
    if (c == s) {
      found = n;
      return false;
    }
    return true;
  });
  return found;
}

}  // namespace pagelab::matrix

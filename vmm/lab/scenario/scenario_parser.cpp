// The hand-written parser of the scenario language. A line-oriented language needs no
// grammar library: each line is split into words (with their columns, for errors) and
// the first word picks the statement.
#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/lab/judge/scenario_model.hpp"
#include "pagelab/lab/scenario/scenario.hpp"
#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/number.hpp"
#include "pagelab/paging/printable.hpp"
#include "pagelab/paging/text_file.hpp"

namespace pagelab::lab::scenario {

using paging::bit;
using paging::Pte;

// The input is echoed quoted and bounded: a file name or a word may hold terminal
// escapes, NULs, newlines or a megabyte, and the error must stay one readable line.
ScenarioError::ScenarioError(Location where, const std::string& message)
    : std::runtime_error(fmt::format("{}:{}:{}: {}", paging::printable(where.file), where.line,
                                     where.column, paging::printable(message, 300))),
      where_(std::move(where)),
      message_(paging::printable(message, 300)) {}

namespace {

struct Word {
  std::string text;
  unsigned column;  // 1-based
  std::string low;  // text in lower case: keywords are matched against it
};

// Keywords are ASCII: no locale to consult for each character of every line.
char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

void split_words(std::string_view line, std::vector<Word>& words) {
  words.clear();
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    auto& w = words.emplace_back();
    w.text.assign(line.substr(start, i - start));
    w.column = static_cast<unsigned>(start + 1);
    w.low.resize(w.text.size());
    std::transform(w.text.begin(), w.text.end(), w.low.begin(), ascii_lower);
  }
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<std::uint64_t> number_of(std::string_view text) {
  return paging::parse_number(text);
}

// Leaf and entry flags by name. "bitN" names any bit, for reserved-bit experiments.
std::optional<std::uint64_t> flag_of(std::string_view name) {
  static constexpr std::pair<std::string_view, std::uint64_t> flags[] = {
      {"p", Pte::Present},    {"w", Pte::Writable},  {"rw", Pte::Writable}, {"u", Pte::User},
      {"us", Pte::User},      {"pwt", Pte::Pwt},     {"pcd", Pte::Pcd},     {"a", Pte::Accessed},
      {"d", Pte::Dirty},      {"ps", Pte::PageSize}, {"pat", Pte::Pat},     {"g", Pte::Global},
      {"nx", Pte::NoExecute}, {"xd", Pte::NoExecute}};
  for (const auto& [flag, mask] : flags) {
    if (flag == name) return mask;
  }
  if (name.size() > 3 && name.starts_with("bit")) {
    auto n = number_of(name.substr(3));
    if (n && *n < 64) return bit(static_cast<unsigned>(*n));
  }
  return std::nullopt;
}

class LineParser {
 public:
  LineParser(const std::string& file, unsigned line, std::vector<Word> words)
      : file_(file), line_(line), words_(std::move(words)) {}

  [[nodiscard]] bool done() const { return pos_ >= words_.size(); }
  void give_back(std::vector<Word>& spare) { spare.swap(words_); }
  [[nodiscard]] Location here() const {
    const unsigned col = done() ? end_column() : words_[pos_].column;
    return {file_, line_, col};
  }
  [[noreturn]] void fail(const std::string& message) const { throw ScenarioError(here(), message); }
  [[noreturn]] void fail_previous(const std::string& message) const {
    throw ScenarioError({file_, line_, words_[pos_ - 1].column}, message);
  }

  [[nodiscard]] const std::string& peek() const {
    static const std::string none;
    return done() ? none : words_[pos_].low;
  }
  std::string next(const std::string& what) {
    if (done()) fail("expected " + what + " at the end of the line");
    return words_[pos_++].text;
  }
  // The next word in lower case.
  std::string next_low(const std::string& what) {
    if (done()) fail("expected " + what + " at the end of the line");
    return words_[pos_++].low;
  }
  bool accept(std::string_view word) {
    if (!done() && words_[pos_].low == word) {
      ++pos_;
      return true;
    }
    return false;
  }
  void require(std::string_view word) {
    if (!accept(word)) {
      const std::string w(word);
      fail(done() ? "expected '" + w + "' at the end of the line"
                  : "expected '" + w + "', found '" + words_[pos_].text + "'");
    }
  }
  std::uint64_t number(const std::string& what) {
    const std::string text = next(what);
    auto n = number_of(text);
    if (!n) fail_previous(what + ": '" + text + "' is not a number (use 0x.., 0b.. or decimal)");
    return *n;
  }
  // A length: a number, optionally with a k/m/g suffix (powers of 1024).
  std::uint64_t length(const std::string& what) {
    std::string text = next_low(what);
    std::uint64_t scale = 1;
    if (!text.empty() && !text.starts_with("0x")) {
      const char last = text.back();
      scale = last == 'k' ? 1ULL << 10 : last == 'm' ? 1ULL << 20 : last == 'g' ? 1ULL << 30 : 1;
      if (scale != 1) text.pop_back();
    }
    auto n = number_of(text);
    if (!n || *n == 0) fail_previous(what + ": '" + words_[pos_ - 1].text + "' is not a length");
    if (*n > UINT64_MAX / scale) {
      fail_previous(what + ": '" + words_[pos_ - 1].text + "' does not fit in 64 bits");
    }
    return *n * scale;
  }
  // An address of a range that must not wrap past 2^64 (nor, with `bits` < 64, past
  // 2^bits: linear addresses in 32-bit paging and PAE).
  void range(const std::string& what, std::uint64_t start, std::uint64_t length, unsigned bits,
             const Location& at) const {
    const std::uint64_t last_allowed = bits >= 64 ? UINT64_MAX : (std::uint64_t{1} << bits) - 1;
    if (length == 1 && start > last_allowed) {
      throw ScenarioError(at, fmt::format("{}: {:#x} does not fit in {} bits (linear addresses in "
                                          "32-bit paging and PAE)",
                                          what, start, bits));
    }
    if (start > last_allowed || length - 1 > last_allowed - start) {
      throw ScenarioError(
          at, fmt::format("{}: {:#x} + {:#x} bytes goes past {} ({}-bit addresses)", what, start,
                          length, bits >= 64 ? "2^64" : fmt::format("2^{}", bits), bits));
    }
  }
  // The location of the word `back` words before the current one.
  [[nodiscard]] Location at_previous(std::size_t back = 1) const {
    return {file_, line_, words_[pos_ - back].column};
  }
  // Parses `key=VALUE` from the current word; nullopt if the word is not `key=...`.
  std::optional<std::uint64_t> keyed(const std::string& key) {
    if (done()) return std::nullopt;
    const std::string_view w = words_[pos_].low;
    if (!w.starts_with(key) || w.size() <= key.size() || w[key.size()] != '=') {
      return std::nullopt;
    }
    auto n = number_of(w.substr(key.size() + 1));
    if (!n) fail(key + ": '" + words_[pos_].text.substr(key.size() + 1) + "' is not a number");
    ++pos_;
    return n;
  }
  // LEVEL: 1-5, an Intel name, or a Linux name in the scenario's mode (PGD is the top
  // level: PML5 in 5-level, PML4 in 4-level, the PDPT in PAE, the PD in 32-bit paging;
  // a level Linux folds in that mode is refused, naming the one it folds into).
  unsigned level(paging::PagingMode mode) {
    static const std::map<std::string, unsigned> names = {
        {"pt", 1}, {"pd", 2}, {"pdpt", 3}, {"pml4", 4}, {"pml5", 5}};
    const char* what = "a level (1-5, PT, PD, PDPT, PML4, PML5, or PGD, P4D, PUD, PMD, PTE)";
    const std::string text = next_low(what);
    if (auto it = names.find(text); it != names.end()) return it->second;
    if (auto l = linux_level(mode, text)) return *l;
    auto n = number_of(text);
    if (!n || *n < 1 || *n > 5) {
      fail_previous("'" + text + "' is not " + what);
    }
    return static_cast<unsigned>(*n);
  }
  std::optional<unsigned> linux_level(paging::PagingMode mode, const std::string& text) {
    using paging::PagingMode;
    const unsigned top = mode == PagingMode::Level5   ? 5
                         : mode == PagingMode::Level4 ? 4
                         : mode == PagingMode::Pae    ? 3
                                                      : 2;
    // Linux's five names, top first, and the Intel level each one is in this mode (0:
    // folded).
    struct Named {
      const char* name;
      unsigned level;
    };
    const Named levels[] = {
        {"pgd", top},
        {"p4d", top == 5 ? 4U : 0U},
        {"pud", top >= 4 ? 3U : 0U},
        {"pmd", top >= 3 ? 2U : 0U},
        {"pte", 1},
    };
    for (const auto& l : levels) {
      if (text != l.name) continue;
      if (l.level == 0) {
        std::string upper;
        for (const char c : text)
          upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        fail_previous(upper + " is folded in " + std::string(paging::to_string(mode)) +
                      " paging (Linux keeps it in the PGD entry above): use PGD or the Intel name");
      }
      return l.level;
    }
    return std::nullopt;
  }
  void end() {
    if (!done()) fail("unexpected '" + words_[pos_].text + "'");
  }

 private:
  [[nodiscard]] unsigned end_column() const {
    if (words_.empty()) return 1;
    return words_.back().column + static_cast<unsigned>(words_.back().text.size());
  }
  std::string file_;
  unsigned line_;
  std::vector<Word> words_;
  std::size_t pos_ = 0;
};

std::optional<paging::PageSize> page_size_of(const std::string& w) {
  if (w == "4k") return paging::PageSize::Size4K;
  if (w == "2m") return paging::PageSize::Size2M;
  if (w == "4m") return paging::PageSize::Size4M;
  if (w == "1g") return paging::PageSize::Size1G;
  return std::nullopt;
}

// "+wp -pge": named bits of one control register.
SetControl parse_control(LineParser& p, ControlRegister reg, std::vector<std::string>& features) {
  using namespace paging;
  static const std::map<std::string, std::uint64_t> cr0 = {{"wp", Cr0::Wp}};
  static const std::map<std::string, std::uint64_t> cr4 = {{"pse", Cr4::Pse},
                                                           {"pge", Cr4::Pge},
                                                           {"smep", Cr4::Smep},
                                                           {"smap", Cr4::Smap},
                                                           {"pke", Cr4::Pke}};
  static const std::map<std::string, std::uint64_t> efer = {{"nxe", Efer::Nxe}};
  static const std::map<std::string, std::uint64_t> rflags = {{"ac", Rflags::Ac}};
  const auto& names = reg == ControlRegister::Cr0    ? cr0
                      : reg == ControlRegister::Cr4  ? cr4
                      : reg == ControlRegister::Efer ? efer
                                                     : rflags;
  SetControl c{reg};
  if (p.done()) p.fail("expected +BIT or -BIT");
  while (!p.done()) {
    const std::string w = p.peek();
    const bool set = w.starts_with('+');
    if (!set && !w.starts_with('-')) p.fail("expected +BIT or -BIT, found '" + w + "'");
    auto it = names.find(w.substr(1));
    if (it == names.end()) {
      std::string known;
      for (const auto& [name, mask] : names) known += (known.empty() ? "" : ", ") + name;
      p.fail("unknown bit '" + w.substr(1) + "' (this register knows: " + known + ")");
    }
    (set ? c.set : c.clear) |= it->second;
    if (set && it->second == Cr4::Smep) features.push_back("SMEP");
    if (set && it->second == Cr4::Smap) features.push_back("SMAP");
    if (set && it->second == Cr4::Pke) features.push_back("PKU");
    p.next("bit");
  }
  return c;
}

// "+w -u" or "w u nx": entry flags; `signed_only` demands a sign on each.
void parse_flags(LineParser& p, std::uint64_t& set, std::uint64_t& clear, bool signed_only) {
  while (!p.done() && p.peek() != "via") {
    if (auto key = p.keyed("pk")) {
      if (*key >= 16) p.fail_previous("pk: a protection key is 0-15");
      set = (set & ~Pte::ProtectionKey) | (*key << Pte::ProtectionKeyShift);
      clear |= Pte::ProtectionKey & ~set;
      continue;
    }
    std::string_view w = p.peek();  // valid until p.next()
    bool is_set = true;
    if (w.starts_with('+') || w.starts_with('-')) {
      is_set = w[0] == '+';
      w.remove_prefix(1);
    } else if (signed_only) {
      p.fail("expected +FLAG or -FLAG, found '" + std::string(w) + "'");
    }
    auto f = flag_of(w);
    if (!f) {
      p.fail("unknown flag '" + std::string(w) +
             "' (known: p w u pwt pcd a d ps pat g nx bitN pk=N)");
    }
    (is_set ? set : clear) |= *f;
    p.next("flag");
  }
}

AccessStep parse_access(LineParser& p, paging::AccessType type) {
  AccessStep a;
  a.access.type = type;
  a.access.size = 8;
  a.access.address = paging::Linear(p.number("address"));
  while (!p.done()) {
    if (p.accept("size")) {
      const auto n = p.number("size");
      if (n != 1 && n != 2 && n != 4 && n != 8) p.fail_previous("size: 1, 2, 4 or 8 bytes");
      a.access.size = static_cast<unsigned>(n);
    } else if (p.accept("user")) {
      a.access.privilege = paging::Privilege::User;
    } else if (p.accept("supervisor") || p.accept("sup")) {
      a.access.privilege = paging::Privilege::Supervisor;
    } else if (p.accept("ac")) {
      a.ac = true;
    } else if (p.accept("value")) {
      if (type != paging::AccessType::Write) p.fail_previous("only a write stores a value");
      a.write_value = p.number("value");
    } else {
      p.fail("unexpected '" + p.peek() + "' (expected size N, user, supervisor, ac or value V)");
    }
  }
  if (type == paging::AccessType::Fetch) a.access.size = 1;
  return a;
}

Expectation parse_expect(LineParser& p, const AccessStep& access, paging::PagingMode mode) {
  const std::string kind = p.next("what to expect (ok, value, translate, pf, gp, ad)");
  const std::string k = lower(kind);
  if (k == "ok") return ExpectOk{};
  if (k == "gp") return ExpectGp{};
  if (k == "value") {
    if (access.access.type != paging::AccessType::Read) {
      p.fail_previous("'expect value' needs a read before it");
    }
    ExpectValue v;
    const std::string text = p.next("a value");
    std::size_t start = 0;
    while (true) {
      const std::size_t bar = text.find('|', start);
      auto n = number_of(text.substr(start, bar == std::string::npos ? bar : bar - start));
      if (!n) p.fail_previous("value: '" + text + "' is not a number or A|B list");
      v.values.push_back(*n);
      if (bar == std::string::npos) break;
      start = bar + 1;
    }
    if (p.accept("mask")) v.mask = p.number("mask");
    return v;
  }
  if (k == "translate") {
    ExpectTranslate t{};
    const auto first = p.number("a physical address");
    if (p.peek() == "=") {
      if (first != access.access.address.value()) {
        p.fail_previous(
            fmt::format("translate: {:#x} is not the address of the access before it "
                        "({:#x})",
                        first, access.access.address.value()));
      }
      p.require("=");
      t.physical = paging::GuestPhys(p.number("a physical address"));
    } else {
      t.physical = paging::GuestPhys(first);
    }
    return t;
  }
  if (k == "pf") {
    ExpectPageFault pf{};
    auto err = p.keyed("err");
    if (!err) p.fail("expected err=CODE");
    if (*err > UINT32_MAX) p.fail_previous("err: a #PF error code has 32 bits");
    pf.error_code = static_cast<std::uint32_t>(*err);
    pf.cr2 = p.keyed("cr2");
    return pf;
  }
  if (k == "ad") {
    ExpectAd ad{};
    ad.level = p.level(mode);
    if (auto a = p.keyed("a")) {
      if (*a > 1) p.fail_previous("a= takes 0 or 1");
      ad.accessed = *a == 1;
    }
    if (auto d = p.keyed("d")) {
      if (*d > 1) p.fail_previous("d= takes 0 or 1");
      ad.dirty = *d == 1;
    }
    if (!ad.accessed && !ad.dirty) p.fail("expected a=0|1 and/or d=0|1");
    return ad;
  }
  p.fail_previous("unknown expectation '" + kind + "' (ok, value, translate, pf, gp, ad)");
}

std::optional<paging::PagingMode> mode_of(const std::string& w) {
  if (w == "4level") return paging::PagingMode::Level4;
  if (w == "5level") return paging::PagingMode::Level5;
  if (w == "pae") return paging::PagingMode::Pae;
  if (w == "32bit") return paging::PagingMode::Bits32;
  return std::nullopt;
}

}  // namespace

// The parser's state between lines: what a statement may refer to (the mode, the
// tables' base) and the statement whose `expect` lines may still follow.
struct ScenarioReader::Impl {
  Scenario s;  // the header, and at most two statements: the last one and the one before
  std::string text;
  std::size_t at = 0;  // in text
  unsigned line_no = 0;
  bool setup_started = false;  // anything but mode/tables
  // Linear addresses are 32 bits in 32-bit paging and PAE: a wider one is a typo the
  // CPU cannot even be asked about.
  unsigned linear_bits = 64;
  bool mode_is_32bit = false;
  paging::PagingMode current_mode = paging::PagingMode::Level4;
  std::uint64_t tables_base = DefaultTablesBase;

  std::unique_ptr<paging::TextLineReader> lines;  // or the whole `text`
  std::vector<Word> spare_words;                  // split_words()'s storage, kept from line to line

  bool next_line(std::string_view& line) {
    if (lines) {
      try {
        return lines->next(line);
      } catch (const paging::TextFileError& e) {
        throw ScenarioError({s.file, e.line(), e.line() == 0 ? 0U : 1U}, e.what());
      }
    }
    if (at >= text.size()) return false;
    const std::size_t nl = text.find('\n', at);
    const std::size_t end = nl == std::string::npos ? text.size() : nl;
    line = std::string_view(text).substr(at, end - at);
    at = end + 1;
    return true;
  }

  void parse_line(std::string_view raw) {
    const std::string& file = s.file;
    // Legal but probably not meant: said on stderr by `run`, kept in the JSON.
    auto warn = [&](const Location& at, const std::string& message) {
      s.warnings.push_back(
          fmt::format("{}:{}:{}: warning: {}", at.file, at.line, at.column, message));
    };
    auto linear = [&](LineParser& p, const std::string& what, std::uint64_t length = 1) {
      const auto value = p.number(what);
      p.range(what, value, length, linear_bits, p.at_previous());
      return paging::Linear(value);
    };
    ++line_no;
    std::string_view line = raw;
    const std::size_t hash = line.find('#');
    if (hash != std::string_view::npos) {
      if (s.title.empty() && s.statements.empty() && line_no == 1) {
        std::string_view t = line.substr(hash + 1);
        while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
        s.title = std::string(t);
      }
      line = line.substr(0, hash);
    }
    std::vector<Word> words;
    words.swap(spare_words);
    split_words(line, words);
    if (words.empty()) {
      spare_words.swap(words);
      return;
    }
    std::string source;
    for (const auto& w : words) {
      if (!source.empty()) source += ' ';
      source += w.text;
    }
    LineParser p(file, line_no, std::move(words));
    // The words' storage goes back for the next line, whatever this one throws.
    struct GiveBack {
      LineParser& p;
      std::vector<Word>& spare;
      ~GiveBack() { p.give_back(spare); }
    } give_back{p, spare_words};
    const Location where = p.here();
    const std::string verb_text = p.next_low("a statement");
    const std::string_view verb = verb_text;  // compared with literals: no strlen each

    if (verb == "expect") {
      AccessStep* last =
          s.statements.empty() ? nullptr : std::get_if<AccessStep>(&s.statements.back().action);
      if (last == nullptr) p.fail_previous("'expect' must follow a read, write or fetch");
      Expect e{where, source, parse_expect(p, *last, current_mode)};
      p.end();
      last->expects.push_back(std::move(e));
      return;
    }

    if (verb == "cpu") {
      const std::string w = p.next_low("a vendor (amd, intel)");
      if (w != "amd" && w != "intel") p.fail_previous("unknown vendor '" + w + "' (amd, intel)");
      if (setup_started) p.fail_previous("'cpu' must come before every statement but 'mode'");
      p.end();
      s.rules = w;
      return;
    }
    Action action = Flush{};
    if (verb == "mode") {
      const std::string w = p.next_low("a mode (4level, 5level, pae, 32bit)");
      auto m = mode_of(w);
      if (!m) p.fail_previous("unknown mode '" + w + "' (4level, 5level, pae, 32bit)");
      if (setup_started) p.fail_previous("'mode' must come before every other statement");
      if (*m == paging::PagingMode::Level5) s.requires_features.push_back("LA57");
      mode_is_32bit = *m == paging::PagingMode::Bits32;
      current_mode = *m;
      linear_bits = *m == paging::PagingMode::Bits32 || *m == paging::PagingMode::Pae ? 32 : 64;
      action = SetMode{*m};
    } else if (verb == "cr0" || verb == "cr4" || verb == "efer" || verb == "rflags") {
      const ControlRegister reg = verb == "cr0"    ? ControlRegister::Cr0
                                  : verb == "cr4"  ? ControlRegister::Cr4
                                  : verb == "efer" ? ControlRegister::Efer
                                                   : ControlRegister::Rflags;
      action = parse_control(p, reg, s.requires_features);
    } else if (verb == "pkru") {
      const auto value = p.number("a PKRU value (2 bits per key: AD, WD)");
      if (value > 0xFFFF'FFFF) p.fail_previous("pkru: the register has 32 bits");
      s.requires_features.push_back("PKU");
      action = SetControl{ControlRegister::Pkru, value, 0xFFFF'FFFF};
    } else if (verb == "tables") {
      if (setup_started) p.fail_previous("'tables' must come before every other statement");
      const auto base = p.number("a physical address");
      if (base % 4096 != 0) p.fail_previous("tables: the base must be 4 KiB aligned");
      tables_base = base;
      action = PlaceTables{paging::GuestPhys(base)};
    } else if (verb == "table") {
      PlaceTable t{};
      t.va = linear(p, "an address");
      t.level = p.level(current_mode);
      p.require("at");
      const auto at = p.number("a physical address");
      if (at % 4096 != 0) p.fail_previous("table: the address must be 4 KiB aligned");
      t.at = paging::GuestPhys(at);
      action = t;
    } else if (verb == "map") {
      Map m{};
      m.va = paging::Linear(p.number("an address"));
      const Location va_at = p.at_previous();
      m.pa = paging::GuestPhys(m.va.value());
      Location pa_at = va_at;
      if (p.accept("->")) {
        m.pa = paging::GuestPhys(p.number("a physical address"));
        pa_at = p.at_previous();
      }
      m.length = p.length("a length");
      p.range("map", m.va.value(), m.length, linear_bits, va_at);
      p.range("map: the physical range", m.pa.value(), m.length, 64, pa_at);
      m.page_size = paging::PageSize::Size4K;
      bool size_given = false;
      if (auto size = page_size_of(p.peek())) {
        m.page_size = *size;
        size_given = true;
        p.next("page size");
      }
      if (m.page_size == paging::PageSize::Size1G) s.requires_features.push_back("1GB-pages");
      if (!size_given &&
          (m.length == 2ULL << 20 || m.length == 4ULL << 20 || m.length == 1ULL << 30)) {
        warn(va_at, fmt::format("map: LEN {:#x} is a large-page size, but no page size was given: "
                                "this maps {} 4 KiB pages (add 2m, 4m or 1g for one large page)",
                                m.length, m.length >> 12));
      }
      // Where the tables live: the oracle's pool (`tables PA`), and the engine's pool
      // on a CPU. Data mapped over them changes the tables behind the scenario's back.
      const std::pair<std::uint64_t, std::uint64_t> pools[] = {
          {tables_base, tables_base + TablesArea},
          {ExperimentLayout::TablePoolBase, ExperimentLayout::TablePoolLimit}};
      for (const auto& [lo, hi] : pools) {
        if (m.pa.value() < hi && lo < m.pa.value() + m.length) {
          warn(pa_at,
               fmt::format("map: the physical range [{:#x}, {:#x}) overlaps the page-table "
                           "pool at [{:#x}, {:#x}){}: accesses through it can change the "
                           "tables",
                           m.pa.value(), m.pa.value() + m.length, lo, hi,
                           lo == ExperimentLayout::TablePoolBase ? " the CPU runs use"
                                                                 : " ('tables PA' moves it)"));
          break;
        }
      }
      std::uint64_t clear = 0;
      parse_flags(p, m.flags, clear, false);
      if ((clear & ~Pte::ProtectionKey) != 0)
        p.fail("map takes flags to set; use 'protect' or 'set entry' to clear");
      action = m;
    } else if (verb == "unmap") {
      Unmap u{};
      u.va = paging::Linear(p.number("an address"));
      const Location va_at = p.at_previous();
      u.length = p.length("a length");
      p.range("unmap", u.va.value(), u.length, linear_bits, va_at);
      action = u;
    } else if (verb == "protect") {
      Protect pr{};
      pr.va = paging::Linear(p.number("an address"));
      const Location va_at = p.at_previous();
      pr.length = p.length("a length");
      p.range("protect", pr.va.value(), pr.length, linear_bits, va_at);
      if (p.done()) p.fail("expected +FLAG or -FLAG");
      parse_flags(p, pr.set, pr.clear, true);
      action = pr;
    } else if (verb == "recursive") {
      const auto index = p.number("a top-level index");
      if (index > 511) p.fail_previous("recursive: an index is 0-511");
      action = Recursive{static_cast<unsigned>(index)};
    } else if (verb == "set") {
      p.require("entry");
      SetEntry e{};
      e.va = linear(p, "an address");
      e.level = p.level(current_mode);
      if (p.accept("=")) {
        e.value = p.number("an entry value");
        if (linear_bits == 32 && mode_is_32bit && *e.value > UINT32_MAX) {
          p.fail_previous("set entry: a 32-bit paging entry has 32 bits");
        }
        // A present PDPTE with PS is a 1 GiB page where CPUID offers them, a reserved
        // bit elsewhere: what the file expects of it holds on such CPUs only, as with
        // `map ... 1g` (the fuzzer's reproducers write their trees entry by entry).
        if (e.level == 3 &&
            (current_mode == paging::PagingMode::Level4 ||
             current_mode == paging::PagingMode::Level5) &&
            (*e.value & paging::Pte::Present) != 0 && (*e.value & paging::Pte::PageSize) != 0) {
          s.requires_features.push_back("1GB-pages");
        }
      } else {
        if (p.done() || p.peek() == "via") p.fail("expected +FLAG, -FLAG or = VALUE");
        parse_flags(p, e.set, e.clear, true);
      }
      if (p.accept("via")) {
        const std::string who = p.next_low("probe or host");
        if (who == "probe") {
          e.writer = Writer::Probe;
        } else if (who == "host") {
          e.writer = Writer::Host;
        } else {
          p.fail_previous("via: 'probe' (the guest at CPL0) or 'host'");
        }
      }
      action = e;
    } else if (verb == "invlpg") {
      action = Invlpg{linear(p, "an address")};
    } else if (verb == "flush") {
      action = Flush{};
    } else if (verb == "poke") {
      Poke k{};
      k.pa = paging::GuestPhys(p.number("a physical address"));
      if (k.pa.value() % 8 != 0) p.fail_previous("poke: the address must be 8-byte aligned");
      k.value = p.number("a value");
      action = k;
    } else if (verb == "read" || verb == "write" || verb == "fetch") {
      const auto type = verb == "read"    ? paging::AccessType::Read
                        : verb == "write" ? paging::AccessType::Write
                                          : paging::AccessType::Fetch;
      const Location address_at = p.here();
      auto a = parse_access(p, type);
      // Only the width is checked here: a non-canonical address is the CPU's #GP to show.
      if (linear_bits < 64) {
        p.range("address", a.access.address.value(), 1, linear_bits, address_at);
      }
      action = std::move(a);
    } else {
      p.fail_previous(
          "unknown statement '" + verb_text +
          "' (mode, cpu, cr0, cr4, efer, rflags, pkru, tables, table, map, unmap, protect, "
          "recursive, set entry, invlpg, flush, poke, read, write, fetch, expect)");
    }
    p.end();
    if (verb != "mode" && verb != "tables") setup_started = true;
    s.statements.push_back({where, source, std::move(action)});
  }
};

ScenarioReader::ScenarioReader(std::string text, const std::string& file)
    : impl_(std::make_unique<Impl>()) {
  impl_->s.file = file;
  impl_->text = std::move(text);
}

ScenarioReader::ScenarioReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->s.file = path;
  try {
    impl_->lines = std::make_unique<paging::TextLineReader>(path);
  } catch (const paging::TextFileError& e) {
    throw ScenarioError({path, e.line(), e.line() == 0 ? 0U : 1U}, e.what());
  }
}

ScenarioReader::~ScenarioReader() = default;

std::optional<Statement> ScenarioReader::next() {
  auto& statements = impl_->s.statements;
  // A statement is whole once the next one starts (its `expect` lines come before).
  std::string_view line;
  while (statements.size() < 2 && impl_->next_line(line)) impl_->parse_line(line);
  if (statements.empty()) return std::nullopt;
  Statement first = std::move(statements.front());
  statements.erase(statements.begin());
  return first;
}

const Scenario& ScenarioReader::header() {
  auto& r = impl_->s.requires_features;
  std::sort(r.begin(), r.end());
  r.erase(std::unique(r.begin(), r.end()), r.end());
  return impl_->s;
}

Scenario parse_scenario(const std::string& text, const std::string& file) {
  ScenarioReader reader(text, file);
  std::vector<Statement> statements;
  while (auto st = reader.next()) statements.push_back(std::move(*st));
  Scenario s = reader.header();
  s.statements = std::move(statements);
  return s;
}

Scenario load_scenario(const std::string& path) {
  std::string text;
  try {
    text = paging::read_text_file(path);
  } catch (const paging::TextFileError& e) {
    throw ScenarioError({path, e.line(), e.line() == 0 ? 0U : 1U}, e.what());
  }
  return parse_scenario(text, path);
}

}  // namespace pagelab::lab::scenario

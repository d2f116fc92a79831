#include "pagelab/paging/tables_file.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "pagelab/paging/number.hpp"
#include "pagelab/paging/printable.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::paging {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

std::optional<PagingMode> parse_mode_name(const std::string& name) {
  const std::string n = lower(name);
  if (n == "none" || n == "off") return PagingMode::None;
  if (n == "32" || n == "2" || n == "32-bit" || n == "bits32") return PagingMode::Bits32;
  if (n == "pae" || n == "3") return PagingMode::Pae;
  if (n == "4" || n == "level4" || n == "4-level") return PagingMode::Level4;
  if (n == "5" || n == "level5" || n == "5-level") return PagingMode::Level5;
  return std::nullopt;
}

TablesFile parse_tables_text(const std::string& text, const std::string& source) {
  TablesFile out;
  bool have_cr3 = false;
  std::istringstream in(text);
  std::string line;
  unsigned line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::vector<std::string> w;
    std::vector<std::size_t> column;  // 1-based, per word
    for (std::size_t i = 0; i < line.size();) {
      if (std::isspace(static_cast<unsigned char>(line[i])) != 0) {
        ++i;
        continue;
      }
      const std::size_t start = i;
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i])) == 0) ++i;
      w.push_back(line.substr(start, i - start));
      column.push_back(start + 1);
    }
    if (w.empty()) continue;
    // FILE:LINE:COL, the input quoted and bounded (it may be anything).
    auto fail_at = [&](std::size_t word, const std::string& why) {
      return std::invalid_argument(fmt::format("{}:{}:{}: {}", printable(source), line_no,
                                               column[word], printable(why, 300)));
    };
    auto fail = [&](const std::string& why) { return fail_at(0, why); };
    auto number_at = [&](std::size_t word) {
      auto v = parse_number(w[word]);
      if (!v) {
        throw fail_at(
            word, fmt::format("'{}' is not a number (0x.. hex, 0b.. binary, decimal)", w[word]));
      }
      return *v;
    };

    const std::string key = lower(w[0]);
    if (key == "mode") {
      if (w.size() != 2) throw fail("expected 'mode 32|pae|4|5'");
      out.mode = parse_mode_name(w[1]);
      // Without paging there are no tables to explain (and no offset width).
      if (!out.mode || *out.mode == PagingMode::None) {
        throw fail_at(1, fmt::format("unknown mode '{}' (use 32, pae, 4 or 5)", w[1]));
      }
    } else if (key == "cr3" || key == "cr0" || key == "cr4" || key == "efer" || key == "rflags" ||
               key == "pkru") {
      if (w.size() != 2) throw fail(fmt::format("expected '{} VALUE'", key));
      const std::uint64_t v = number_at(1);
      if (key == "cr3") out.cr3 = v, have_cr3 = true;
      if (key == "cr0") out.cr0 = v;
      if (key == "cr4") out.cr4 = v;
      if (key == "efer") out.efer = v;
      if (key == "rflags") out.rflags = v;
      if (key == "pkru") {
        if (v > UINT32_MAX) throw fail_at(1, "pkru is a 32-bit register");
        out.pkru = static_cast<std::uint32_t>(v);
      }
    } else {
      if (w.size() != 2 && w.size() != 3) {
        throw fail(
            "expected 'ADDRESS VALUE [32|64]' or a keyword (mode, cr3, cr0, cr4, efer, "
            "rflags, pkru)");
      }
      const std::uint64_t address = number_at(0);
      const std::uint64_t value = number_at(1);
      const std::uint64_t width = w.size() == 3 ? number_at(2) : 64;
      if (width != 32 && width != 64) throw fail_at(2, "entry width must be 32 or 64");
      if (address % (width / 8) != 0) throw fail("entry address is not naturally aligned");
      if (width == 32 && value > UINT32_MAX) throw fail_at(1, "value does not fit in 32 bits");
      try {
        if (width == 32) {
          out.memory.write32(GuestPhys(address), static_cast<std::uint32_t>(value));
        } else {
          out.memory.write64(GuestPhys(address), value);
        }
      } catch (const std::out_of_range& e) {
        throw fail(e.what());
      }
    }
  }
  if (!have_cr3) {
    throw std::invalid_argument(fmt::format("{}: no 'cr3 VALUE' line", printable(source)));
  }
  return out;
}

CpuState state_for(const TablesFile& file, PagingMode mode, CpuFeatures features) {
  if (mode == PagingMode::Level5) features.la57 = true;
  CpuState s = make_cpu_state(mode, GuestPhys(file.cr3), features);
  if (file.cr0) s.cr0 = *file.cr0;
  if (file.cr4) s.cr4 = *file.cr4;
  if (file.efer) s.efer = *file.efer;
  if (file.rflags) s.rflags = *file.rflags;
  if (file.pkru) s.pkru = *file.pkru;
  if (s.mode() == PagingMode::Pae) {
    if (auto gp = load_pdptes(file.memory, s)) throw std::invalid_argument(gp->reason);
  }
  return s;
}

}  // namespace pagelab::paging

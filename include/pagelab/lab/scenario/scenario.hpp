#pragma once
// Scenario files (.pgl): a line-oriented language for paging experiments. One
// statement per line, '#' starts a comment, numbers are decimal, 0x.. or 0b.. with
// '_' separators. The grammar is documented in examples/README.md and in
// `pagelab run --help` (scenario_help_text()); this header holds the parsed form.
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "pagelab/paging/address.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/walker.hpp"

namespace pagelab::lab::scenario {

struct Location {
  std::string file;
  unsigned line = 0, column = 0;  // 1-based
};

// Bad scenario text: what() is "FILE:LINE:COL: message", one line.
class ScenarioError : public std::runtime_error {
 public:
  ScenarioError(Location where, const std::string& message);
  [[nodiscard]] const Location& where() const { return where_; }
  [[nodiscard]] const std::string& message() const { return message_; }

 private:
  Location where_;
  std::string message_;
};

// Pkru: `pkru VALUE` replaces the whole register (set = VALUE, clear = every bit).
enum class ControlRegister { Cr0, Cr4, Efer, Rflags, Pkru };
// Who writes a page-table entry: the guest at CPL0 (the default, as an OS would) or the
// host behind the guest's back (a foreign writer, e.g. another CPU or a device).
enum class Writer { Probe, Host };

struct SetMode {
  paging::PagingMode mode;
};
struct SetControl {
  ControlRegister reg;
  std::uint64_t set = 0, clear = 0;
};
// Page-table frames are taken from [base, base + 1 MiB).
struct PlaceTables {
  paging::GuestPhys base;
};
// The table at `level` that translates `va` lives at `at` (created there, empty).
struct PlaceTable {
  paging::Linear va;
  unsigned level;
  paging::GuestPhys at;
};
struct Map {
  paging::Linear va;
  paging::GuestPhys pa;
  std::uint64_t length;
  paging::PageSize page_size;
  std::uint64_t flags;  // Pte:: bits of the leaves
};
struct Unmap {
  paging::Linear va;
  std::uint64_t length;
};
struct Protect {
  paging::Linear va;
  std::uint64_t length;
  std::uint64_t set = 0, clear = 0;
};
struct Recursive {
  unsigned index;
};
struct SetEntry {
  paging::Linear va;
  unsigned level;
  std::uint64_t set = 0, clear = 0;
  std::optional<std::uint64_t> value;  // "= VALUE" replaces the entry
  Writer writer = Writer::Probe;
};
struct Invlpg {
  paging::Linear va;
};
struct Flush {};  // MOV CR3 with the same value
struct Poke {
  paging::GuestPhys pa;
  std::uint64_t value;  // 8 bytes, little-endian, written by the host
};

struct ExpectOk {};
struct ExpectValue {
  std::vector<std::uint64_t> values;  // any of them ("0x1111|0x2222")
  std::uint64_t mask = ~std::uint64_t{0};
};
struct ExpectTranslate {
  paging::GuestPhys physical;
};
struct ExpectPageFault {
  std::uint32_t error_code;
  std::optional<std::uint64_t> cr2;
};
struct ExpectGp {};
struct ExpectAd {
  unsigned level;
  std::optional<bool> accessed, dirty;
};
using Expectation =
    std::variant<ExpectOk, ExpectValue, ExpectTranslate, ExpectPageFault, ExpectGp, ExpectAd>;

struct Expect {
  Location where;
  std::string text;  // the source line, for reports
  Expectation what;
};

struct AccessStep {
  paging::Access access;
  bool ac = false;                // RFLAGS.AC for this access only
  std::uint64_t write_value = 0;  // what a write stores
  std::vector<Expect> expects;    // the `expect` lines that follow
};

using Action = std::variant<SetMode, SetControl, PlaceTables, PlaceTable, Map, Unmap, Protect,
                            Recursive, SetEntry, Invlpg, Flush, Poke, AccessStep>;

struct Statement {
  Location where;
  std::string text;  // the source line without comment, trimmed
  Action action;
};

struct Scenario {
  std::string file;
  std::string title;  // the first comment line, if the file starts with one
  std::vector<Statement> statements;
  // Features the scenario needs from the CPU ("1GB-pages", "SMEP", ...), derived from
  // its statements: the engine skips the scenario when the platform lacks one.
  std::vector<std::string> requires_features;
  // "amd" or "intel" (the `cpu` statement): the file states that vendor's rules where the
  // two differ, and runs only on such a CPU; the oracle alone assumes them. Empty: any.
  std::string rules;
  // "FILE:LINE:COL: warning: ..." for legal statements that are probably not meant (a
  // large-page LEN mapped with 4 KiB pages, a mapping over the page-table pool).
  std::vector<std::string> warnings;
};

// Parses scenario text; `file` names it in errors. Throws ScenarioError.
Scenario parse_scenario(const std::string& text, const std::string& file);

// The same, one statement at a time (an access with its `expect` lines): a file of any
// length is run without holding its statements.
class ScenarioReader {
 public:
  ScenarioReader(std::string text, const std::string& file);
  // Reads the file as it goes (paging/text_file.hpp's checks; a refusal is a
  // ScenarioError at line 0, or at the line that is too long).
  explicit ScenarioReader(const std::string& path);
  ~ScenarioReader();
  ScenarioReader(const ScenarioReader&) = delete;
  ScenarioReader& operator=(const ScenarioReader&) = delete;
  // The next statement, or nothing after the last. Throws ScenarioError.
  std::optional<Statement> next();
  // File, title, warnings and required features of what was read so far (no statements).
  const Scenario& header();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
// Reads and parses a file; an unreadable file is a ScenarioError at line 0.
Scenario load_scenario(const std::string& path);

// The language reference, as printed by `pagelab run --help`.
const std::string& scenario_help_text();

}  // namespace pagelab::lab::scenario

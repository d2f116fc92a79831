#pragma once
// One fuzz case, at the level of the scenario language: a paging mode, control state,
// the entries of a small page-table tree, and a history of entry changes (by the guest
// or a foreign host write), INVLPG / MOV CR3 and accesses. It lowers two ways that must
// agree: to engine operations (lab::Op) for fast batched runs, and to `.pgl` text that
// `pagelab run` replays.
//
// Every case of a mode uses the same window (Window): one top-level entry, and below it
// one shared table per level at a fixed guest-physical address, of which only a few
// indices are used. The trees are small and walks deep; frames a leaf may name lie in
// guest RAM above the probe (8..16 MiB) or are the window's own tables (aliases,
// self-maps), so whatever a mutation does, an access never touches the probe.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "pagelab/lab/engine/experiment.hpp"
#include "pagelab/paging/access.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/mode.hpp"

namespace pagelab::fuzz {

inline constexpr unsigned MaxLevels = 5;

struct Window {
  paging::PagingMode mode = paging::PagingMode::Level4;
  unsigned top = 4;        // the top level (CR3's table; PAE: the PDPTE registers)
  unsigned top_index = 1;  // the window's entry in the top-level table
  std::array<std::uint64_t, MaxLevels + 1> table{};  // table[L]: GPA of the table at level L < top
  std::array<std::vector<unsigned>, MaxLevels + 1> indices;  // the indices used at level L
  [[nodiscard]] unsigned entry_bytes() const { return paging::entry_bytes(mode); }
  // The address whose index at each level is idx[L] (idx[top] is top_index), plus offset.
  [[nodiscard]] std::uint64_t address(const std::array<unsigned, MaxLevels + 1>& idx,
                                      std::uint64_t offset) const;
  // The canonical path: the first index of every level.
  [[nodiscard]] std::array<unsigned, MaxLevels + 1> canonical() const;
  // An address that reaches entry (level, index) through the canonical path above it.
  [[nodiscard]] std::uint64_t entry_va(unsigned level, unsigned index) const;
  // A pointer to the window's table at `level` - 1, as entry at `level` holds it.
  [[nodiscard]] std::uint64_t pointer_to(unsigned level) const;
};

// The window of each mode (fixed: cases of one mode share it).
const Window& window_for(paging::PagingMode mode);

// Guest-physical frames leaves may name: 4 KiB data frames, huge-page frames.
std::span<const std::uint64_t> data_frames_4k();
std::span<const std::uint64_t> data_frames_2m();  // also 4 MiB frames where 4 MiB aligned
inline constexpr std::uint64_t DataFrame1G = 0;   // accesses reach 8..12 MiB only (index choices)

// Control state, as differences from the state a scenario starts in (CR0.WP, EFER.NXE
// where the CPU has NX, CR4.PSE in 32-bit paging where it has PSE; the rest clear).
struct Controls {
  bool wp = true, nxe = true, pse = true;
  bool smep = false, smap = false, pke = false, pge = false;
  std::uint32_t pkru = 0;
  bool operator==(const Controls&) const = default;
};

struct Entry {
  unsigned level = 1, index = 0;
  std::uint64_t value = 0;
  bool operator==(const Entry&) const = default;
};

struct StepSetEntry {
  unsigned level = 1, index = 0;
  std::uint64_t value = 0;
  bool host = false;  // a foreign write by the host (not in 32-bit paging)
  bool operator==(const StepSetEntry&) const = default;
};
struct StepInvlpg {
  std::uint64_t va = 0;
  bool operator==(const StepInvlpg&) const = default;
};
struct StepFlush {  // MOV CR3, same value
  bool operator==(const StepFlush&) const = default;
};
struct StepAccess {
  std::uint64_t va = 0;
  paging::AccessType type = paging::AccessType::Read;
  unsigned size = 8;
  paging::Privilege privilege = paging::Privilege::Supervisor;
  bool ac = false;
  std::uint64_t value = 0;  // what a write stores
  bool operator==(const StepAccess&) const = default;
};
using Step = std::variant<StepSetEntry, StepInvlpg, StepFlush, StepAccess>;

struct FuzzCase {
  std::uint64_t seed = 0, number = 0;
  paging::PagingMode mode = paging::PagingMode::Level4;
  Controls controls;
  std::vector<Entry> entries;  // the tree before the first step; absent entries are 0
  std::vector<Step> steps;
  bool operator==(const FuzzCase&) const = default;              // header (seed, number) included
  [[nodiscard]] bool same_program(const FuzzCase& other) const;  // without seed/number
  [[nodiscard]] std::size_t access_count() const;
};

// Why the case cannot be written as a scenario (an entry the history changes is not
// reachable by VA and LEVEL through the tables at that point), or why it is unsafe to
// run (a fetch after an entry change not yet flushed: the CPU may execute from a page the
// engine planted nothing in), or nothing.
std::optional<std::string> check_case(const FuzzCase& c);

// What check_case() asks of one entry: a present pointer at LEVEL to the window's table
// below, which the page-table builder follows to reach entries by address; and a top
// entry that MOV CR3 loads (a PAE PDPTE without reserved bits).
bool points_down_the_window(const Window& w, paging::PagingMode mode, unsigned level,
                            std::uint64_t v);
bool top_entry_loadable(paging::PagingMode mode, std::uint64_t v);

// `mode 4level` style name, as the scenario language spells it.
std::string mode_keyword(paging::PagingMode mode);

// The `.pgl` text. `header` lines are written as comments first; `expects` (by access
// step index) are `expect` lines after that access.
struct PglOptions {
  std::vector<std::string> header;
  std::string cpu;  // "amd" or "intel": a `cpu` line (the vendor's rules the case needs)
  std::vector<std::pair<std::size_t, std::vector<std::string>>> expects;
};
std::string to_pgl(const FuzzCase& c, const PglOptions& options = {});

// What the fast path knows about the machine to lower a case to operations.
struct OpBase {
  std::uint64_t root_entry = 0;                       // GPA of the window's top-level entry
  std::uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;  // the engine's start state
  bool has_pku = false;
  bool has_invpcid = false;  // CPUID: the reset's flush of global pages is one INVPCID
};
// Controls as absolute register values on top of the engine's start state.
struct ControlValues {
  std::uint64_t cr0 = 0, cr4 = 0, efer = 0;
  std::uint32_t pkru = 0;
};
ControlValues control_values(const FuzzCase& c, const OpBase& base);
std::uint64_t entry_address(const FuzzCase& c, const OpBase& base, unsigned level, unsigned index);
// The case's program after its reset (controls, entries, flush): steps [begin, end) as
// operations, and for each of them the index of its operation.
void lower_steps(const FuzzCase& c, const OpBase& base, std::vector<lab::Op>& ops,
                 std::vector<std::size_t>* step_op = nullptr, std::size_t begin = 0,
                 std::size_t end = ~std::size_t{0});
// How many steps come before the first access: in a `.pgl` they are the scenario's setup,
// made before the CPU enters the mode (so in PAE paging, before MOV CR3 loads the PDPTE
// registers); the fast path runs them before its reset's flush to mean the same.
std::size_t setup_steps(const FuzzCase& c);

}  // namespace pagelab::fuzz

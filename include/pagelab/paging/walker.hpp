#pragma once
// The oracle: walks the paging structures in physical memory as the architecture
// says (SDM vol. 3 ch. 4, AMD APM vol. 2 ch. 5) and returns the outcome of one access
// with the explanation, level by level.
#include <algorithm>
#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "pagelab/paging/access.hpp"
#include "pagelab/paging/address.hpp"
#include "pagelab/paging/cpu_state.hpp"
#include "pagelab/paging/mode.hpp"
#include "pagelab/paging/physical_memory.hpp"

namespace pagelab::paging {

struct WalkStep {
  unsigned level;
  std::string intel_name, linux_name;
  unsigned index;
  GuestPhys entry_address;  // for a PAE PDPTE: where it was loaded from
  std::uint64_t value;
  std::string meaning;  // decoded flags and what the entry does for this walk
  bool leaf;
};

// An entry address and the bits an access sets in it (A, and D on a leaf for writes).
// Recorded whether or not the bit is already set: after the access, value | bits.
using AdUpdate = std::pair<GuestPhys, std::uint64_t>;

// The A/D updates of one outcome: at most one per entry of two walks (an access that
// crosses a page), so they are kept inline. A judge makes one set per allowed outcome
// of every access, and a heap allocation each was a tenth of its cost.
class AdUpdates {
 public:
  static constexpr std::size_t Capacity = 2 * 5;
  AdUpdates() {}  // NOLINT(modernize-use-equals-default): leaves `items_` unset, below
  AdUpdates(const AdUpdates& o) : size_(o.size_) { std::copy(o.begin(), o.end(), begin()); }
  AdUpdates& operator=(const AdUpdates& o) {
    size_ = o.size_;
    std::copy(o.begin(), o.end(), begin());
    return *this;
  }
  ~AdUpdates() = default;
  AdUpdates(std::initializer_list<AdUpdate> updates) {
    for (const auto& u : updates) push_back(u);
  }
  void push_back(const AdUpdate& u) {
    if (size_ == Capacity) throw std::length_error("more A/D updates than two walks make");
    items_[size_++] = u;
  }
  void emplace_back(GuestPhys entry, std::uint64_t bits) { push_back({entry, bits}); }
  // Appends [first, last); `at` must be end(): updates are only ever added at the end.
  template <class It>
  void insert(const AdUpdate* at, It first, It last) {
    if (at != end()) throw std::logic_error("AdUpdates::insert: only at the end");
    for (; first != last; ++first) push_back(*first);
  }
  void reserve(std::size_t /*n*/) {}
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] const AdUpdate* begin() const { return items_.data(); }
  [[nodiscard]] const AdUpdate* end() const { return items_.data() + size_; }
  [[nodiscard]] AdUpdate* begin() { return items_.data(); }
  [[nodiscard]] AdUpdate* end() { return items_.data() + size_; }
  [[nodiscard]] const AdUpdate& operator[](std::size_t i) const { return items_[i]; }
  [[nodiscard]] const AdUpdate& front() const { return items_[0]; }
  [[nodiscard]] AdUpdate& back() { return items_[size_ - 1]; }
  [[nodiscard]] const AdUpdate& back() const { return items_[size_ - 1]; }
  bool operator==(const AdUpdates& o) const {
    return std::equal(begin(), end(), o.begin(), o.end());
  }

 private:
  // Only the first size_ are set: copying or zeroing all ten made every outcome dearer.
  union {
    std::array<AdUpdate, Capacity> items_;
  };
  std::size_t size_ = 0;
};

struct Translation {
  GuestPhys physical;
  PageSize page_size = PageSize::Size4K;
  bool writable = true, user = true, executable = true;  // effective, over all levels
  AdUpdates ad_updates;
  // Additions beyond the brief, for TLB modelling: the page and its leaf entry.
  Linear page_base;
  GuestPhys frame;
  bool global = false;
  unsigned protection_key = 0;
  GuestPhys leaf_entry_address;
  std::uint64_t leaf_entry = 0;
  bool operator==(const Translation&) const = default;
};

struct PageFault {
  std::uint32_t error_code = 0;
  Linear cr2;
  // Upper-level entries that were used before the fault: their A bit MAY be set
  // (Intel does; the leaf's A never is on a fault). Not part of equality.
  AdUpdates may_set_accessed;
  bool operator==(const PageFault& other) const {
    return error_code == other.error_code && cr2 == other.cr2;
  }
};

struct GeneralProtection {
  std::uint32_t error_code = 0;
  std::string reason;
  bool operator==(const GeneralProtection& other) const { return error_code == other.error_code; }
};

using Outcome = std::variant<Translation, PageFault, GeneralProtection>;

struct Walk {
  std::vector<WalkStep> steps;
  Outcome outcome;
  std::string fault_reason;  // empty on success
};

// Walks the structures for `access`. Never throws for architectural conditions (those
// are outcomes); throws std::invalid_argument for an address wider than 32 bits in a
// 32-bit mode (no such linear address exists there), and std::out_of_range if an entry
// lies outside `memory`.
Walk walk(const PhysicalMemory& memory, const CpuState& state, const Access& access);

// The set of outcomes the architecture allows. Today: {walk().outcome}.
// Hook: once the experiment engine records history since the last invalidation
// (entries changed without INVLPG/MOV CR3/INVPCID, global pages across MOV CR3), it
// will pass that history here and stale translations will be added to the set.
std::vector<Outcome> allowed_outcomes(const PhysicalMemory& memory, const CpuState& state,
                                      const Access& access);

// What MOV CR3 does in PAE mode: loads the four PDPTEs from the 32-byte-aligned PDPT
// at CR3[31:5] into state.pdptes. A present PDPTE with a reserved bit set (2:1, 8:5,
// 63:MAXPHYADDR) makes MOV CR3 raise #GP(0): returned, and the registers are unchanged.
std::optional<GeneralProtection> load_pdptes(const PhysicalMemory& memory, CpuState& state);

// Readable one-liners for reports and the CLI.
std::string describe(const Outcome& outcome);
std::string describe_error_code(std::uint32_t error_code);  // "P W U RSVD I PK" style

}  // namespace pagelab::paging

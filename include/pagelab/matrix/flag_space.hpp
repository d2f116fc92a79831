#pragma once
// The permission matrix's flag space, as data: per matrix mode (a paging mode and a leaf
// size), the dimensions a case is made of (each level's entry flags, control bits, PKRU
// rights, the access), the legality rules that leave meaningless combinations out (each
// with a one-line reason), and a readable name per case that parses back.
//
// Cases are the legal assignments of the dimensions in odometer order, the first
// dimension outermost: control bits first, so that consecutive cases rarely change a
// control register, the access last, so that consecutive cases share their entries.
// A case's number is its position among the legal cases of its mode.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagelab/paging/mode.hpp"

namespace pagelab::matrix {

// Flags of one entry, as the matrix names them (not architectural bits: entry_value()
// in case_program.hpp turns them into bits for the mode).
enum Flag : std::uint16_t {
  FlagP = 1 << 0,
  FlagRw = 1 << 1,
  FlagUs = 1 << 2,
  FlagA = 1 << 3,
  FlagD = 1 << 4,
  FlagNx = 1 << 5,
  FlagPk = 1 << 6,     // protection key 1 (key 0 otherwise)
  FlagR51 = 1 << 7,    // bit 51: above MAXPHYADDR on every CPU with MAXPHYADDR < 52
  FlagRmax = 1 << 8,   // bit MAXPHYADDR: the lowest reserved address bit
  FlagRps = 1 << 9,    // bit 7 (PS) of a PML4E or PML5E: reserved
  FlagRlow = 1 << 10,  // the lowest reserved bit of a large leaf (bit 13; PSE-36: bit 21)
};
inline constexpr unsigned FlagCount = 11;
inline constexpr std::uint16_t ReservedFlags = FlagR51 | FlagRmax | FlagRps | FlagRlow;
// "p", "rw", "us", "a", "d", "nx", "pk", "r51", "rmax", "ps", "rlow"
std::string_view flag_token(unsigned index);

enum Control : std::uint8_t {
  ControlWp = 1 << 0,    // CR0.WP
  ControlSmep = 1 << 1,  // CR4.SMEP
  ControlSmap = 1 << 2,  // CR4.SMAP
  ControlPke = 1 << 3,   // CR4.PKE
  ControlNxe = 1 << 4,   // EFER.NXE
};
inline constexpr unsigned ControlCount = 5;
std::string_view control_token(unsigned index);  // "wp", "smep", "smap", "pke", "nxe"

enum PkruRight : std::uint8_t { PkruAd = 1 << 0, PkruWd = 1 << 1 };  // for key 1

enum AccessBits : std::uint8_t {
  AccessWrite = 1 << 0,
  AccessFetch = 1 << 1,
  AccessUser = 1 << 2,  // CPL3
  AccessAc = 1 << 3,    // RFLAGS.AC during a supervisor access
  // The same access again right after (kvm-unit-tests' AC_ACCESS_TWICE): what the first
  // left in the TLB and in the A/D bits must give the same answer (SDM 4.10.2: a fault
  // caches nothing; a translation may answer from the TLB).
  AccessTwice = 1 << 4,
};

// What a case sets up: the OR of the values its dimensions chose.
struct Setup {
  std::array<std::uint16_t, 6> level{};  // Flag bits per level (1 = PT .. 5 = PML5)
  std::uint8_t control = 0;              // Control bits
  std::uint8_t pkru = 0;                 // PkruRight bits
  std::uint8_t access = 0;               // AccessBits
  // Inline and element by element: the enumeration does both at every node of a tree
  // of hundreds of millions, and a library memcmp call per comparison was a third of it.
  Setup& operator|=(const Setup& o) {
    for (std::size_t i = 0; i < level.size(); ++i) level[i] |= o.level[i];
    control |= o.control;
    pkru |= o.pkru;
    access |= o.access;
    return *this;
  }
  bool operator==(const Setup& o) const {
    bool same = control == o.control && pkru == o.pkru && access == o.access;
    for (std::size_t i = 0; i < level.size(); ++i) same = same && level[i] == o.level[i];
    return same;
  }
};

// One dimension: its name and the values it takes (value 0 first in the odometer).
struct Dimension {
  std::string name;                 // "cr0.wp", "pt", "upper", "rsvd", "access", ...
  std::vector<Setup> values;        // each value's contribution
  std::vector<std::string> labels;  // one per value, for listings
};

// A legality rule: a case is legal when no rule forbids it.
struct Rule {
  std::string name;
  std::string reason;
  std::function<bool(const Setup&)> forbids;
};

// The matrix modes: a paging mode and the level of its leaf.
struct MatrixMode {
  std::string name;  // "4level-4k", "5level", "pae-2m", "32bit-4m", ...
  paging::PagingMode paging;
  paging::PageSize leaf_size;
  unsigned leaf_level;
  std::string description;
};
const std::vector<MatrixMode>& matrix_modes();
// Modes named by `text`: a mode's name, or a group ("4level", "pae", "32bit", "all").
// Empty when nothing matches.
std::vector<MatrixMode> select_modes(std::string_view text);
// The matrix's name of a level in `mode`: "pml5", "pml4", "pdpt", "pd", "pt".
std::string_view level_token(paging::PagingMode mode, unsigned level);

class FlagSpace {
 public:
  explicit FlagSpace(const MatrixMode& mode);

  [[nodiscard]] const MatrixMode& mode() const { return mode_; }
  [[nodiscard]] const std::vector<Dimension>& dimensions() const { return dims_; }
  [[nodiscard]] const std::vector<Rule>& rules() const { return rules_; }
  // Levels from the top of the walk down to the leaf.
  [[nodiscard]] const std::vector<unsigned>& levels() const { return levels_; }
  [[nodiscard]] bool has_control(Control c) const { return (controls_ & c) != 0; }

  // Every assignment of the dimensions (legal or not): the product of their sizes.
  [[nodiscard]] std::uint64_t assignments() const;
  [[nodiscard]] bool legal(const Setup& s) const;
  // The first rule that forbids `s`, or nullptr.
  [[nodiscard]] const Rule* forbidding_rule(const Setup& s) const;

  // Walks the legal cases in order: f(number, setup) for each; f returns false to stop.
  void for_each(const std::function<bool(std::uint64_t, const Setup&)>& f) const;
  // Legal cases (walks them all), or `at_most` when there are at least that many.
  [[nodiscard]] std::uint64_t count(std::uint64_t at_most = ~std::uint64_t{0}) const;
  // Every assignment, legal or not, in the same order (for tests of the pruned walk).
  void for_each_assignment(const std::function<void(const Setup&)>& f) const;

  // "4level-4k pml4:p,rw,us,a pdpt:... pt:p,rw,nx wp nxe write cpl3".
  [[nodiscard]] std::string name(const Setup& s) const;
  // The setup a name describes in this mode, or a one-line reason it describes none
  // (an unknown token, a flag no dimension offers, an illegal combination and its rule).
  [[nodiscard]] std::optional<Setup> parse(std::string_view name, std::string* error) const;
  // The number of a legal setup (walks the cases up to it).
  [[nodiscard]] std::optional<std::uint64_t> number_of(const Setup& s) const;

 private:
  MatrixMode mode_;
  std::vector<unsigned> levels_;
  std::uint8_t controls_ = 0;
  std::vector<Dimension> dims_;
  std::vector<Rule> rules_;
};

// Which level stops the walk of `s` (not present, or a reserved bit set), 0 if none.
unsigned stopping_level(const FlagSpace& space, const Setup& s);

}  // namespace pagelab::matrix

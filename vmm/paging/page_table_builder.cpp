#include "pagelab/paging/page_table_builder.hpp"

#include <fmt/core.h>

#include <stdexcept>

#include "pagelab/paging/bits.hpp"
#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/paging/entry_format.hpp"

namespace pagelab::paging {

namespace {

constexpr std::uint64_t TableBytes = 4096;
constexpr std::uint64_t AddressLowBits = bits(0, 11);

// The attribute bits a caller may pass for a leaf (no address bits, no PS).
std::uint64_t allowed_leaf_flags(PagingMode mode, bool huge) {
  std::uint64_t allowed = Pte::Present | Pte::Writable | Pte::User | Pte::Pwt | Pte::Pcd |
                          Pte::Accessed | Pte::Dirty | Pte::Global | Pte::Available;
  allowed |= huge ? Pte::LargePat : Pte::Pat;
  if (mode == PagingMode::Level4 || mode == PagingMode::Level5) {
    allowed |= bits(Pte::HighAvailableLo, Pte::HighAvailableHi) | Pte::ProtectionKey;
  }
  if (mode != PagingMode::Bits32) allowed |= Pte::NoExecute;
  return allowed;
}

std::uint64_t coverage(PagingMode mode, unsigned level) {
  return bit(level_bits(mode, level).lo);
}

PageSize size_at(PagingMode mode, unsigned level) {
  return leaf_sizes(mode, level).front();
}

}  // namespace

PageTableBuilder::PageTableBuilder(PhysicalMemory& memory, FrameAllocator& frames, PagingMode mode,
                                   CpuFeatures features)
    : memory_(memory), frames_(frames), mode_(mode), features_(features) {
  if (mode == PagingMode::None) {
    throw std::invalid_argument("PageTableBuilder: paging mode 'none' has no page tables");
  }
  root_ = new_table();
}

PageTableBuilder::PageTableBuilder(PhysicalMemory& memory, FrameAllocator& frames, PagingMode mode,
                                   CpuFeatures features, GuestPhys root)
    : memory_(memory), frames_(frames), mode_(mode), features_(features), root_(root) {
  if (mode == PagingMode::None) {
    throw std::invalid_argument("PageTableBuilder: paging mode 'none' has no page tables");
  }
}

std::uint64_t PageTableBuilder::read(GuestPhys a) const {
  return mode_ == PagingMode::Bits32 ? memory_.read32(a) : memory_.read64(a);
}

void PageTableBuilder::write(GuestPhys a, std::uint64_t v) {
  if (mode_ == PagingMode::Bits32) {
    memory_.write32(a, static_cast<std::uint32_t>(v));
  } else {
    memory_.write64(a, v);
  }
}

GuestPhys PageTableBuilder::new_table() {
  const GuestPhys t = frames_.allocate();
  if (mode_ != PagingMode::Level4 && mode_ != PagingMode::Level5 &&
      t.value() + TableBytes > bit(32)) {
    throw std::invalid_argument(
        fmt::format("page-table frame {:#x} is above 4 GiB; {} paging needs its tables below 4 GiB",
                    t.value(), to_string(mode_)));
  }
  for (std::uint64_t off = 0; off < TableBytes; off += sizeof(std::uint64_t)) {
    memory_.write64(t + off, 0);
  }
  return t;
}

std::uint64_t PageTableBuilder::make_pointer(GuestPhys table, unsigned level) const {
  // A PAE PDPTE has no R/W or U/S (those bits are reserved there).
  if (mode_ == PagingMode::Pae && level == 3) return table.value() | PaePdpte::Present;
  return table.value() | Pte::Present | Pte::Writable | Pte::User;
}

bool PageTableBuilder::is_leaf(std::uint64_t entry, unsigned level) const {
  if (level == 1) return true;
  if (level == 2) return (entry & Pte::PageSize) != 0;
  return level == 3 && (mode_ == PagingMode::Level4 || mode_ == PagingMode::Level5) &&
         (entry & Pte::PageSize) != 0;
}

GuestPhys PageTableBuilder::table_of(std::uint64_t entry, unsigned /*level*/) const {
  const std::uint64_t mask = mode_ == PagingMode::Bits32 ? Pte32::Frame4K : phys_mask(features_);
  return GuestPhys(entry & mask & ~AddressLowBits);
}

GuestPhys PageTableBuilder::slot(GuestPhys table, unsigned level, Linear va) const {
  const LevelBits lb = level_bits(mode_, level);
  const std::uint64_t index = (va.value() >> lb.lo) & (bit(lb.bits) - 1);
  return table + index * entry_bytes(mode_);
}

GuestPhys PageTableBuilder::ensure_path(Linear va, unsigned leaf_lvl) {
  GuestPhys table = root_;
  for (unsigned level = top_level(mode_); level > leaf_lvl; --level) {
    const GuestPhys s = slot(table, level, va);
    const std::uint64_t e = read(s);
    if ((e & Pte::Present) == 0) {
      const GuestPhys t = new_table();
      write(s, make_pointer(t, level));
      table = t;
      continue;
    }
    if (is_leaf(e, level)) {
      throw std::invalid_argument(
          fmt::format("{:#x} is inside a {} page mapped by a {}E; split() or unmap() it first",
                      va.value(), to_string(size_at(mode_, level)), intel_level_name(level)));
    }
    table = table_of(e, level);
  }
  return slot(table, leaf_lvl, va);
}

void PageTableBuilder::map(Linear va, GuestPhys pa, std::uint64_t length, PageSize size,
                           std::uint64_t leaf_flags) {
  const unsigned level = leaf_level(mode_, size);
  const std::uint64_t page = page_bytes(size);
  const bool huge = level > 1;
  if (size == PageSize::Size1G && !features_.page1g) {
    throw std::invalid_argument(
        "1G pages need CPUID 1 GiB-page support (CpuFeatures::page1g); use 2M pages");
  }
  if (size == PageSize::Size4M && !features_.pse) {
    throw std::invalid_argument("4M pages need PSE (CpuFeatures::pse); use 4K pages");
  }
  if (va.value() % page != 0 || pa.value() % page != 0 || length % page != 0 || length == 0) {
    throw std::invalid_argument(fmt::format(
        "map({:#x} -> {:#x}, {:#x} bytes): address and length must be non-zero multiples of "
        "the {} page size",
        va.value(), pa.value(), length, to_string(size)));
  }
  const std::uint64_t extra = leaf_flags & ~allowed_leaf_flags(mode_, huge);
  if (extra != 0) {
    throw std::invalid_argument(fmt::format(
        "map: leaf flags {:#x} include bits {:#x} that are not attributes of a {} leaf in {} "
        "paging (for huge pages PAT is Pte::LargePat; 32-bit paging has no NX)",
        leaf_flags, extra, to_string(size), to_string(mode_)));
  }
  const unsigned pa_bits = mode_ == PagingMode::Bits32
                               ? (size == PageSize::Size4M && features_.pse36
                                      ? std::min(std::min(features_.maxphyaddr, Pte::MaxPhysBits),
                                                 Pte32::Pse36MaxPhysBits)
                                      : 32u)
                               : std::min(features_.maxphyaddr, Pte::MaxPhysBits);
  if (pa.value() + (length - 1) >= bit(pa_bits)) {
    throw std::invalid_argument(fmt::format(
        "map: physical range {:#x}+{:#x} exceeds the {}-bit physical addresses a {} leaf "
        "can hold here",
        pa.value(), length, pa_bits, to_string(size)));
  }
  for (std::uint64_t off = 0; off < length; off += page) {
    const Linear v = va + off;
    const GuestPhys s = ensure_path(v, level);
    const std::uint64_t old = read(s);
    if ((old & Pte::Present) != 0 && !is_leaf(old, level)) {
      throw std::invalid_argument(fmt::format(
          "map: {:#x} already has a page table under its {}E; unmap() the smaller pages or "
          "merge() them first",
          v.value(), intel_level_name(level)));
    }
    std::uint64_t frame = pa.value() + off;
    if (mode_ == PagingMode::Bits32 && huge) {
      // PSE-36: physical bits 39:32 go to entry bits 20:13.
      const std::uint64_t high = frame >> Pte32::Pse36PhysShift;
      frame = (frame & Pte32::Frame4M) | (high << Pte32::Pse36Lo);
    }
    write(s, frame | leaf_flags | Pte::Present | (huge ? Pte::PageSize : 0));
  }
}

void PageTableBuilder::for_each_leaf(Linear va, std::uint64_t length, bool clear,
                                     std::uint64_t set_flags, std::uint64_t clear_flags) {
  std::uint64_t done = 0;
  while (done < length) {
    const Linear cur = va + done;
    GuestPhys table = root_;
    for (unsigned level = top_level(mode_); level >= 1; --level) {
      const GuestPhys s = slot(table, level, cur);
      const std::uint64_t e = read(s);
      const bool pae_pdpte = mode_ == PagingMode::Pae && level == 3;
      const std::uint64_t cov = coverage(mode_, level);
      if ((e & Pte::Present) == 0) {
        done += cov - (cur.value() & (cov - 1));  // skip to the next region of this level
        break;
      }
      if (!pae_pdpte && is_leaf(e, level)) {
        if (!clear && level == 1 && ((set_flags | clear_flags) & Pte::LargePat) != 0) {
          throw std::invalid_argument(
              "protect: bit 12 is an address bit in a 4K leaf (Pte::LargePat is for huge "
              "pages; use Pte::Pat)");
        }
        if ((cur.value() & (cov - 1)) != 0 || length - done < cov) {
          throw std::invalid_argument(fmt::format(
              "range [{:#x}, +{:#x}) cuts the {} page at {:#x}; split() it first", va.value(),
              length, to_string(size_at(mode_, level)), cur.value() & ~(cov - 1)));
        }
        write(s, clear ? 0 : ((e | set_flags) & ~clear_flags));
        done += cov;
        break;
      }
      table = table_of(e, level);
    }
  }
}

void PageTableBuilder::unmap(Linear va, std::uint64_t length) {
  for_each_leaf(va, length, true, 0, 0);
}

void PageTableBuilder::protect(Linear va, std::uint64_t length, std::uint64_t set_flags,
                               std::uint64_t clear_flags) {
  const std::uint64_t touched = set_flags | clear_flags;
  const std::uint64_t structural = Pte::PageSize | (phys_mask(features_) & ~AddressLowBits);
  if ((touched & structural & ~Pte::LargePat) != 0) {
    throw std::invalid_argument(
        fmt::format("protect: flags {:#x} touch PS or address bits; use map/split/merge for those",
                    touched & structural));
  }
  for_each_leaf(va, length, false, set_flags, clear_flags);
}

void PageTableBuilder::split(Linear va) {
  GuestPhys table = root_;
  for (unsigned level = top_level(mode_); level >= 2; --level) {
    const GuestPhys s = slot(table, level, va);
    const std::uint64_t e = read(s);
    if ((e & Pte::Present) == 0) break;
    const bool pae_pdpte = mode_ == PagingMode::Pae && level == 3;
    if (pae_pdpte || !is_leaf(e, level)) {
      table = table_of(e, level);
      continue;
    }
    CpuState st = make_cpu_state(mode_, root_, features_);
    const EntryDecoding d = decode_entry(st, level, e);
    const unsigned child = level - 1;
    const std::uint64_t child_bytes = coverage(mode_, child);
    const unsigned entries = 1u << level_bits(mode_, child).bits;
    // Attributes without frame and PS; PAT moves from bit 12 to bit 7 for 4 KiB pages.
    const std::uint64_t frame_bits = mode_ == PagingMode::Bits32
                                         ? bits(Pte32::Pse36Lo, 31)
                                         : (phys_mask(features_) & ~AddressLowBits);
    std::uint64_t attrs = e & ~frame_bits & ~Pte::PageSize;
    const bool pat = (e & Pte::LargePat) != 0;
    if (child == 1 && pat) attrs |= Pte::Pat;
    if (child > 1) attrs |= Pte::PageSize | (pat ? Pte::LargePat : 0);
    if (mode_ == PagingMode::Bits32 && d.address.value() >= bit(32)) {
      throw std::invalid_argument(fmt::format(
          "split({:#x}): the 4M page's frame {:#x} is above 4 GiB, which 4K PTEs of 32-bit "
          "paging cannot address",
          va.value(), d.address.value()));
    }
    const GuestPhys t = new_table();
    for (unsigned i = 0; i < entries; ++i) {
      write(t + std::uint64_t{i} * entry_bytes(mode_),
            (d.address.value() + i * child_bytes) | attrs);
    }
    write(s, make_pointer(t, level));
    return;
  }
  throw std::invalid_argument(
      fmt::format("split({:#x}): no huge page maps this address", va.value()));
}

bool PageTableBuilder::merge(Linear va, PageSize size) {
  const unsigned level = leaf_level(mode_, size);
  if (level == 1) throw std::invalid_argument("merge: 4K is the smallest page size");
  if (size == PageSize::Size1G && !features_.page1g) return false;
  if (size == PageSize::Size4M && !features_.pse) return false;
  GuestPhys table = root_;
  for (unsigned l = top_level(mode_); l > level; --l) {
    const std::uint64_t e = read(slot(table, l, va));
    if ((e & Pte::Present) == 0) return false;
    if (!(mode_ == PagingMode::Pae && l == 3) && is_leaf(e, l)) return false;
    table = table_of(e, l);
  }
  const GuestPhys s = slot(table, level, va);
  const std::uint64_t e = read(s);
  if ((e & Pte::Present) == 0 || is_leaf(e, level)) return false;
  const GuestPhys child_table = table_of(e, level);
  const unsigned child = level - 1;
  const std::uint64_t child_bytes = coverage(mode_, child);
  const unsigned entries = 1u << level_bits(mode_, child).bits;
  CpuState st = make_cpu_state(mode_, root_, features_);
  const EntryDecoding first = decode_entry(st, child, read(child_table));
  if (!first.present || !first.leaf || first.address.value() % page_bytes(size) != 0) {
    return false;
  }
  const std::uint64_t first_attrs = first.value & ~(phys_mask(features_) & ~AddressLowBits);
  for (unsigned i = 0; i < entries; ++i) {
    const std::uint64_t v = read(child_table + std::uint64_t{i} * entry_bytes(mode_));
    const EntryDecoding d = decode_entry(st, child, v);
    if (!d.present || !d.leaf || d.address.value() != first.address.value() + i * child_bytes ||
        (v & ~(phys_mask(features_) & ~AddressLowBits)) != first_attrs) {
      return false;
    }
  }
  // The merged leaf keeps the children's attributes; a 4 KiB PAT moves to bit 12.
  std::uint64_t attrs = first.value & bits(0, 11);
  if (mode_ != PagingMode::Bits32) attrs |= first.value & ~(phys_mask(features_));
  attrs &= ~Pte::Pat;
  if (child == 1 && (first.value & Pte::Pat) != 0) attrs |= Pte::LargePat;
  if (child > 1) attrs |= first.value & Pte::LargePat;
  std::uint64_t frame = first.address.value();
  if (mode_ == PagingMode::Bits32) {
    frame = (frame & Pte32::Frame4M) | ((frame >> Pte32::Pse36PhysShift) << Pte32::Pse36Lo);
  }
  write(s, frame | attrs | Pte::PageSize);
  return true;
}

void PageTableBuilder::set_recursive(unsigned top_index) {
  if (mode_ == PagingMode::Pae) {
    throw std::invalid_argument(
        "set_recursive: PAE's top level is four PDPTE registers and cannot map itself");
  }
  const unsigned entries = 1u << level_bits(mode_, top_level(mode_)).bits;
  if (top_index >= entries) {
    throw std::invalid_argument(fmt::format(
        "set_recursive: index {} is outside the {}-entry top table", top_index, entries));
  }
  write(root_ + std::uint64_t{top_index} * entry_bytes(mode_),
        root_.value() | Pte::Present | Pte::Writable);
}

GuestPhys PageTableBuilder::entry_address(Linear va, unsigned level) const {
  if (!has_level(mode_, level)) {
    throw std::invalid_argument(
        fmt::format("level {} does not exist in {} paging", level, to_string(mode_)));
  }
  GuestPhys table = root_;
  for (unsigned l = top_level(mode_); l > level; --l) {
    const std::uint64_t e = read(slot(table, l, va));
    if ((e & Pte::Present) == 0 || (!(mode_ == PagingMode::Pae && l == 3) && is_leaf(e, l))) {
      throw std::invalid_argument(
          fmt::format("{:#x}: the walk stops at the {}E (not present or a leaf) above level {}",
                      va.value(), intel_level_name(l), level));
    }
    table = table_of(e, l);
  }
  return slot(table, level, va);
}

std::uint64_t PageTableBuilder::read_entry(Linear va, unsigned level) const {
  return read(entry_address(va, level));
}

void PageTableBuilder::write_entry(Linear va, unsigned level, std::uint64_t value) {
  write(entry_address(va, level), value);
}

}  // namespace pagelab::paging

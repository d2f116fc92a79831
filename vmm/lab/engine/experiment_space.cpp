#include "pagelab/lab/engine/experiment.hpp"

#include <stdexcept>

#include <fmt/format.h>

#include "pagelab/paging/entry_bits.hpp"
#include "pagelab/probe_abi.h"

namespace pagelab::lab {
namespace {

using paging::GuestPhys;
using paging::Linear;
using paging::PageSize;
using paging::Pte;

constexpr std::uint64_t Page = 4096;

struct ProbeRange {
  std::uint64_t base, limit;
  std::uint64_t flags;
  bool user_alias;  // also mapped, U=1, at the user alias (user_alias()) + base
  const char* what;
};

// What the probe touches once CR3 points at the experiment's tables.
constexpr ProbeRange probe_ranges[] = {
    {PROBE_MAILBOX_GPA, PROBE_MAILBOX_GPA + Page, Pte::Writable, false, "the mailbox"},
    {PROBE_STACK_TOP - Page, PROBE_STACK_TOP, Pte::Writable, false, "the probe's stack"},
    {PROBE_LOAD_GPA, PROBE_LOAD_GPA + PROBE_MAX_SIZE, Pte::Writable, true, "the probe image"},
    {PROBE_BATCH_GPA, PROBE_BATCH_LIMIT, Pte::Writable, true, "the batch area"},
};

// Where the CPL3 stub finds its code and the records: below 4 GiB where linear
// addresses are 32-bit.
std::uint64_t user_alias(paging::PagingMode mode) {
  return mode == paging::PagingMode::Level4 || mode == paging::PagingMode::Level5
             ? PROBE_USER_ALIAS
             : PROBE_USER_ALIAS32;
}

bool overlaps(std::uint64_t a, std::uint64_t alen, std::uint64_t b, std::uint64_t blen) {
  return a < b + blen && b < a + alen;
}

}  // namespace

ExperimentSpace::ExperimentSpace(paging::PhysicalMemory& memory, paging::PagingMode mode,
                                 paging::CpuFeatures features)
    : memory_(memory),
      tables_(GuestPhys(ExperimentLayout::TablePoolBase),
              GuestPhys(ExperimentLayout::TablePoolLimit)),
      frames_(GuestPhys(ExperimentLayout::FramePoolBase),
              GuestPhys(ExperimentLayout::FramePoolLimit)),
      user_alias_(user_alias(mode)) {
  if (mode == paging::PagingMode::None) {
    throw std::invalid_argument(
        "the experiment engine needs paging: use 32-bit, PAE, 4-level or 5-level paging");
  }
  builder_ = std::make_unique<paging::PageTableBuilder>(memory, tables_, mode, features);
  for (const auto& r : probe_ranges) {
    builder_->map(Linear(r.base), GuestPhys(r.base), r.limit - r.base, PageSize::Size4K, r.flags);
    if (r.user_alias) {
      builder_->map(Linear(user_alias_ + r.base), GuestPhys(r.base), r.limit - r.base,
                    PageSize::Size4K, r.flags | Pte::User);
    }
  }
  // The probe writes entries (OpWriteEntry) through this identity map of the table pool.
  // 32-bit paging has no 2 MiB pages (and a 4 MiB one would cover the frame pool). XD
  // stays clear in every mode: it is a reserved bit once a program clears EFER.NXE, and
  // the probe's own stores to the tables would then fault.
  const std::uint64_t pool = ExperimentLayout::TablePoolLimit - ExperimentLayout::TablePoolBase;
  const auto pool_page = mode == paging::PagingMode::Bits32 ? PageSize::Size4K : PageSize::Size2M;
  builder_->map(Linear(ExperimentLayout::TablePoolBase), GuestPhys(ExperimentLayout::TablePoolBase),
                pool, pool_page, Pte::Writable);
  // The CPU sets A in every entry the probe's own accesses use, and D in the leaves it
  // writes through, when it first uses them: the user alias at the first CPL3 access,
  // the pool's map at the first entry write, both after the judge's model copied RAM.
  // Set beforehand, they never change, and a read through an alias of the tables finds
  // what the model holds (seed 7 case 11933688 read 0x406027 where the model said
  // 0x406007: the user alias's PDE, A set by the CPL3 stub's fetch).
  for (const auto& r : probe_ranges) {
    const bool written = (r.flags & Pte::Writable) != 0;
    settle(Linear(r.base), r.limit - r.base, PageSize::Size4K, mode, written);
    if (r.user_alias) {
      settle(Linear(user_alias_ + r.base), r.limit - r.base, PageSize::Size4K, mode, written);
    }
  }
  settle(Linear(ExperimentLayout::TablePoolBase), pool, pool_page, mode, true);
}

void ExperimentSpace::settle(Linear va, std::uint64_t length, PageSize size,
                             paging::PagingMode mode, bool written) {
  const auto step = paging::page_bytes(size);
  const unsigned leaf = size == PageSize::Size4K ? 1 : 2;
  for (std::uint64_t at = va.value(); at < va.value() + length; at += step) {
    for (unsigned level = paging::top_level(mode); level >= leaf; --level) {
      // PAE's PDPTEs reserve bit 5 (SDM table 4-8), and the CPU never sets it there.
      if (mode == paging::PagingMode::Pae && level == 3) continue;
      const auto v = builder_->read_entry(Linear(at), level);
      const auto set = Pte::Accessed | (level == leaf && written ? Pte::Dirty : 0);
      if ((v & set) != set) builder_->write_entry(Linear(at), level, v | set);
    }
  }
}

void ExperimentSpace::check_free(Linear va, std::uint64_t length) const {
  const auto v = va.value();
  for (const auto& r : probe_ranges) {
    if (overlaps(v, length, r.base, r.limit - r.base) ||
        (r.user_alias && overlaps(v, length, user_alias_ + r.base, r.limit - r.base))) {
      throw std::invalid_argument(fmt::format(
          "cannot map {:#x}..{:#x}: it overlaps {} the engine maps at {:#x}..{:#x}{}", v,
          v + length, r.what, r.base, r.limit, r.user_alias ? " (and at its user alias)" : ""));
    }
  }
  const std::uint64_t pool_len = ExperimentLayout::TablePoolLimit - ExperimentLayout::TablePoolBase;
  if (overlaps(v, length, ExperimentLayout::TablePoolBase, pool_len)) {
    throw std::invalid_argument(fmt::format(
        "cannot map {:#x}..{:#x}: the engine identity-maps its page-table pool at {:#x}..{:#x}", v,
        v + length, ExperimentLayout::TablePoolBase, ExperimentLayout::TablePoolLimit));
  }
}

GuestPhys ExperimentSpace::map(Linear va, std::optional<GuestPhys> pa, std::uint64_t length,
                               PageSize size, std::uint64_t leaf_flags) {
  check_free(va, length);
  GuestPhys first;
  if (pa) {
    first = *pa;
  } else {
    const auto bytes = paging::page_bytes(size);
    while (frames_.next().value() % bytes != 0) frames_.allocate();  // align for huge pages
    const auto count = (length + Page - 1) / Page;
    first = frames_.next();
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto f = frames_.allocate();
      for (std::uint64_t o = 0; o < Page; o += 8) memory_.write64(f + o, 0);
    }
  }
  builder_->map(va, first, length, size, leaf_flags);
  return first;
}

void ExperimentSpace::unmap(Linear va, std::uint64_t length) {
  check_free(va, length);
  builder_->unmap(va, length);
}

void ExperimentSpace::protect(Linear va, std::uint64_t length, std::uint64_t set_flags,
                              std::uint64_t clear_flags) {
  check_free(va, length);
  builder_->protect(va, length, set_flags, clear_flags);
}

void ExperimentSpace::set_recursive(unsigned top_index) {
  builder_->set_recursive(top_index);
}

GuestPhys ExperimentSpace::entry_address(Linear va, unsigned level) const {
  return builder_->entry_address(va, level);
}

std::uint64_t ExperimentSpace::read_entry(Linear va, unsigned level) const {
  return builder_->read_entry(va, level);
}

GuestPhys ExperimentSpace::allocate_frame() {
  const auto f = frames_.allocate();
  for (std::uint64_t o = 0; o < Page; o += 8) memory_.write64(f + o, 0);
  return f;
}

}  // namespace pagelab::lab
